#pragma once
// The network factory: builds the planned network from plans.json (configurations.<name>.architecture:
// network_class_name and arch_kwargs, as `mlseg plan` and nnU-Net v2 write them). The class name
// picks the architecture (PlainConvUNet, ResidualEncoderUNet, named as in dynamic_network_architectures);
// the stages only see the SegmentationNetwork interface.
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "mlseg/nn/plain_conv_unet.h"
#include "mlseg/nn/residual_encoder_unet.h"
#include "mlseg/nn/segmentation_network.h"
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

/// The PlainConvUNet options of a plans.json `architecture` object; `at` prefixes key names in errors.
PlainConvUNetOptions plain_conv_unet_options(const nlohmann::ordered_json& architecture, std::int64_t input_channels,
                                             std::int64_t num_outputs, bool deep_supervision, const std::string& at);

/// The ResidualEncoderUNet options of a plans.json `architecture` object (network_class_name
/// ...ResidualEncoderUNet, arch_kwargs with n_blocks_per_stage); `at` prefixes key names in errors.
ResidualEncoderUNetOptions residual_encoder_unet_options(const nlohmann::ordered_json& architecture, std::int64_t input_channels,
                                                         std::int64_t num_outputs, bool deep_supervision, const std::string& at);

/// The full class name an `architecture` object asks for: its network_class_name, full
/// ("dynamic_network_architectures.architectures.unet.ResidualEncoderUNet") or short ("ResidualEncoderUNet");
/// PlainConvUNet when absent. Throws mlseg::Error naming the class and the supported ones otherwise.
std::string network_class_of(const nlohmann::ordered_json& architecture, const std::string& at);

/// The full class names the factory builds.
std::vector<std::string> supported_network_classes();

/// A freshly initialised network of a plans.json `architecture` object (nnU-Net's initialisation
/// of that class); `at` prefixes key names in errors.
SegmentationNetwork network_from_architecture(const nlohmann::ordered_json& architecture, std::int64_t input_channels,
                                              std::int64_t num_outputs, bool deep_supervision, const std::string& at);

/// A freshly initialised network for `configuration` of `plans`.
SegmentationNetwork network_from_plans(const nlohmann::ordered_json& plans, const std::string& configuration,
                                       int input_channels, int num_outputs, bool deep_supervision);

/// The same; errors are located at the plans' source.
SegmentationNetwork network_from_plans(const PlansFile& plans, const std::string& configuration, int input_channels,
                                       int num_outputs, bool deep_supervision);

}  // namespace mlseg
