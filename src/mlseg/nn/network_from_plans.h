#pragma once
// Builds the planned network from plans.json (configurations.<name>.architecture.arch_kwargs,
// as `mlseg plan` writes them in nnU-Net v2's layout).
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>

#include "mlseg/nn/plain_conv_unet.h"
#include "mlseg/nn/residual_encoder_unet.h"
#include "mlseg/planning/plans_file.h"

namespace mlseg {

/// The PlainConvUNet options of `configuration` (e.g. "3d_fullres", "2d"). Throws mlseg::Error
/// naming the key (e.g. "configurations.2d.architecture.arch_kwargs.strides") when it is
/// missing or malformed; the error's location is left empty for the caller to fill with
/// `.located({plans_path})`.
PlainConvUNetOptions plain_conv_unet_options_from_plans(const nlohmann::ordered_json& plans,
                                                        const std::string& configuration, std::int64_t input_channels,
                                                        std::int64_t num_outputs, bool deep_supervision);

/// The same from plans read by read_plans / plans_from_json; errors are located at the plans' source.
PlainConvUNetOptions plain_conv_unet_options_from_plans(const PlansFile& plans, const std::string& configuration,
                                                        std::int64_t input_channels, std::int64_t num_outputs,
                                                        bool deep_supervision);

/// The ResidualEncoderUNet options of a plans.json `architecture` object (network_class_name
/// ...ResidualEncoderUNet, arch_kwargs with n_blocks_per_stage); `at` prefixes key names in errors.
ResidualEncoderUNetOptions residual_encoder_unet_options(const nlohmann::ordered_json& architecture, std::int64_t input_channels,
                                                         std::int64_t num_outputs, bool deep_supervision, const std::string& at);

/// A freshly initialised PlainConvUNet for `configuration` of `plans`.
PlainConvUNet network_from_plans(const nlohmann::ordered_json& plans, const std::string& configuration,
                                 int input_channels, int num_outputs, bool deep_supervision);

PlainConvUNet network_from_plans(const PlansFile& plans, const std::string& configuration, int input_channels,
                                 int num_outputs, bool deep_supervision);

}  // namespace mlseg
