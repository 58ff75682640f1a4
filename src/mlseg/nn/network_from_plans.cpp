#include "mlseg/nn/network_from_plans.h"

#include <nlohmann/json.hpp>

#include <vector>

#include "mlseg/core/error.h"
#include "mlseg/planning/plans_file.h"

namespace mlseg {
namespace {

using Json = nlohmann::ordered_json;

constexpr const char* kRerunPlan = "rerun `mlseg plan` to rewrite plans.json, or fix the key by hand";

// A pointer, not a reference: GCC 13 takes a reference returned next to string temporaries for
// a dangling one (-Wdangling-reference).
const Json* require(const Json& object, const std::string& key, const std::string& at) {
  if (!object.is_object() || !object.contains(key)) throw Error(at + key + " is missing", kRerunPlan);
  return &object[key];
}

std::int64_t positive_int(const Json& value, const std::string& name) {
  if (!value.is_number_integer() || value.get<std::int64_t>() < 1) {
    throw Error(name + " is " + value.dump() + ", not a positive integer", kRerunPlan);
  }
  return value.get<std::int64_t>();
}

std::vector<std::int64_t> int_list(const Json& value, const std::string& name, std::size_t expected_size) {
  if (!value.is_array() || value.size() != expected_size) {
    throw Error(name + " is " + value.dump() + ", not a list of " + std::to_string(expected_size) + " integers",
                kRerunPlan);
  }
  std::vector<std::int64_t> out;
  for (const auto& v : value) out.push_back(positive_int(v, name));
  return out;
}

std::vector<std::vector<std::int64_t>> per_stage_axes(const Json& value, const std::string& name, std::size_t stages,
                                                      std::size_t axes) {
  if (!value.is_array() || value.size() != stages) {
    throw Error(name + " does not have n_stages (" + std::to_string(stages) + ") entries", kRerunPlan);
  }
  std::vector<std::vector<std::int64_t>> out;
  for (std::size_t s = 0; s < stages; ++s) out.push_back(int_list(value[s], name + "[" + std::to_string(s) + "]", axes));
  return out;
}

// nnU-Net writes either one integer for every stage or a list with one entry per stage.
std::vector<int> conv_counts(const Json& value, const std::string& name, std::size_t stages) {
  if (value.is_number_integer()) return std::vector<int>(stages, static_cast<int>(positive_int(value, name)));
  std::vector<int> out;
  for (std::int64_t v : int_list(value, name, stages)) out.push_back(static_cast<int>(v));
  return out;
}

int conv_dimension(const Json& arch, const std::string& arch_at) {
  const Json& conv_op = *require(arch, "conv_op", arch_at);
  const std::string conv = conv_op.is_string() ? conv_op.get<std::string>() : conv_op.dump();
  if (conv.find("Conv3d") != std::string::npos) return 3;
  if (conv.find("Conv2d") != std::string::npos) return 2;
  throw Error(arch_at + "conv_op is '" + conv + "', neither Conv2d nor Conv3d", "use torch.nn.modules.conv.Conv3d or Conv2d");
}

/// Reads the arch_kwargs every U-Net of dynamic-network-architectures shares (conv_op, n_stages,
/// features_per_stage, kernel_sizes, strides, n_conv_per_stage_decoder) into `options` (any options
/// with those setters); returns n_stages.
template <typename Options>
std::size_t read_unet_topology(const Json& arch, const std::string& arch_at, Options& options) {
  const int dimension = conv_dimension(arch, arch_at);
  const auto stages = static_cast<std::size_t>(positive_int(*require(arch, "n_stages", arch_at), arch_at + "n_stages"));
  const auto axes = static_cast<std::size_t>(dimension);
  options.dimension(dimension)
      .n_stages(static_cast<int>(stages))
      .features_per_stage(int_list(*require(arch, "features_per_stage", arch_at), arch_at + "features_per_stage", stages))
      .kernel_sizes(per_stage_axes(*require(arch, "kernel_sizes", arch_at), arch_at + "kernel_sizes", stages, axes))
      .strides(per_stage_axes(*require(arch, "strides", arch_at), arch_at + "strides", stages, axes))
      .n_conv_per_stage_decoder(conv_counts(*require(arch, "n_conv_per_stage_decoder", arch_at),
                                            arch_at + "n_conv_per_stage_decoder", stages - 1));
  return stages;
}

/// validated(options), its error prefixed with where the keys are.
template <typename Options>
Options validated_at(Options options, const std::string& arch_at) {
  try {
    return validated(std::move(options));
  } catch (const Error& e) {
    throw Error(arch_at + ": " + e.problem(), e.fix());
  }
}

struct NetworkBuilder {
  const char* class_name;
  SegmentationNetwork (*build)(const Json& architecture, std::int64_t input_channels, std::int64_t num_outputs,
                               bool deep_supervision, const std::string& at);
};

const Json& architecture_of(const Json& plans, const std::string& configuration) {
  const Json& configurations = *require(plans, "configurations", "");
  if (!configurations.is_object() || !configurations.contains(configuration)) {
    std::string known;
    if (configurations.is_object()) {
      for (const auto& item : configurations.items()) known += (known.empty() ? "" : ", ") + item.key();
    }
    throw Error("plans.json has no configuration '" + configuration + "'",
                known.empty() ? std::string(kRerunPlan) : "use one of: " + known);
  }
  return *require(configurations[configuration], "architecture", "configurations." + configuration + ".");
}

/// The networks mlseg builds, keyed on dynamic_network_architectures' class names. A new
/// architecture is one entry here (and its options reader).
const std::vector<NetworkBuilder>& network_builders() {
  static const std::vector<NetworkBuilder> builders = {
      {kPlainConvUNetClass,
       [](const Json& architecture, std::int64_t inputs, std::int64_t outputs, bool deep_supervision, const std::string& at) {
         return SegmentationNetwork(PlainConvUNet(plain_conv_unet_options(architecture, inputs, outputs, deep_supervision, at)));
       }},
      {kResidualEncoderUNetClass,
       [](const Json& architecture, std::int64_t inputs, std::int64_t outputs, bool deep_supervision, const std::string& at) {
         return SegmentationNetwork(
             ResidualEncoderUNet(residual_encoder_unet_options(architecture, inputs, outputs, deep_supervision, at)));
       }},
  };
  return builders;
}

}  // namespace

ResidualEncoderUNetOptions residual_encoder_unet_options(const Json& architecture, std::int64_t input_channels,
                                                         std::int64_t num_outputs, bool deep_supervision, const std::string& at) {
  const Json& arch = *require(architecture, "arch_kwargs", at);
  const std::string arch_at = at + "arch_kwargs.";
  if (arch.contains("block") && arch["block"].is_string() && arch["block"].get<std::string>().find("BasicBlockD") == std::string::npos) {
    throw Error(arch_at + "block is '" + arch["block"].get<std::string>() + "'; mlseg builds BasicBlockD residual blocks",
                "use nnU-Net's ResEnc presets (BasicBlockD)");
  }
  ResidualEncoderUNetOptions options(input_channels, num_outputs);
  const std::size_t stages = read_unet_topology(arch, arch_at, options);
  options.n_blocks_per_stage(conv_counts(*require(arch, "n_blocks_per_stage", arch_at), arch_at + "n_blocks_per_stage", stages))
      .deep_supervision(deep_supervision);
  return validated_at(std::move(options), arch_at);
}

PlainConvUNetOptions plain_conv_unet_options_from_plans(const Json& plans, const std::string& configuration,
                                                        std::int64_t input_channels, std::int64_t num_outputs,
                                                        bool deep_supervision) {
  const std::string at = "configurations." + configuration + ".";
  const Json& architecture = architecture_of(plans, configuration);
  if (network_class_of(architecture, at + "architecture.") != kPlainConvUNetClass) {
    throw Error(at + "architecture.network_class_name is '" + architecture["network_class_name"].get<std::string>() +
                    "', not PlainConvUNet",
                "build it with network_from_plans (the factory)");
  }
  return plain_conv_unet_options(architecture, input_channels, num_outputs, deep_supervision, at + "architecture.");
}

PlainConvUNetOptions plain_conv_unet_options(const Json& architecture, std::int64_t input_channels, std::int64_t num_outputs,
                                             bool deep_supervision, const std::string& at) {
  const Json& arch = *require(architecture, "arch_kwargs", at);
  const std::string arch_at = at + "arch_kwargs.";
  PlainConvUNetOptions options(input_channels, num_outputs);
  const std::size_t stages = read_unet_topology(arch, arch_at, options);
  options.n_conv_per_stage(conv_counts(*require(arch, "n_conv_per_stage", arch_at), arch_at + "n_conv_per_stage", stages))
      .deep_supervision(deep_supervision);
  return validated_at(std::move(options), arch_at);
}

SegmentationNetwork network_from_architecture(const Json& architecture, std::int64_t input_channels, std::int64_t num_outputs,
                                              bool deep_supervision, const std::string& at) {
  const std::string class_name = network_class_of(architecture, at);
  for (const NetworkBuilder& builder : network_builders()) {
    if (class_name == builder.class_name) return builder.build(architecture, input_channels, num_outputs, deep_supervision, at);
  }
  throw Error("unreachable: network class " + class_name, "report this as a bug");
}

SegmentationNetwork network_from_plans(const Json& plans, const std::string& configuration, int input_channels,
                                       int num_outputs, bool deep_supervision) {
  return network_from_architecture(architecture_of(plans, configuration), input_channels, num_outputs, deep_supervision,
                                   "configurations." + configuration + ".architecture.");
}

std::vector<std::string> supported_network_classes() {
  std::vector<std::string> names;
  for (const NetworkBuilder& builder : network_builders()) names.emplace_back(builder.class_name);
  return names;
}

std::string network_class_of(const Json& architecture, const std::string& at) {
  if (!architecture.is_object() || !architecture.contains("network_class_name")) return kPlainConvUNetClass;
  const Json& value = architecture["network_class_name"];
  if (!value.is_string()) throw Error(at + "network_class_name is " + value.dump().substr(0, 80) + ", not a string", kRerunPlan);
  const std::string name = value.get<std::string>();
  const std::string short_name = name.substr(name.rfind('.') == std::string::npos ? 0 : name.rfind('.') + 1);
  std::string supported;
  for (const NetworkBuilder& builder : network_builders()) {
    const std::string full = builder.class_name;
    if (name == full || short_name == full.substr(full.rfind('.') + 1)) return full;
    supported += (supported.empty() ? "" : ", ") + full.substr(full.rfind('.') + 1);
  }
  throw Error(at + "network_class_name is '" + name + "', which mlseg does not build",
              "use one of the supported networks (" + supported + "), e.g. plan with `mlseg plan` or `--planner resenc-m`");
}

PlainConvUNetOptions plain_conv_unet_options_from_plans(const PlansFile& plans, const std::string& configuration,
                                                        std::int64_t input_channels, std::int64_t num_outputs,
                                                        bool deep_supervision) {
  try {
    return plain_conv_unet_options_from_plans(plans.json, configuration, input_channels, num_outputs, deep_supervision);
  } catch (const Error& e) {
    throw e.located({plans.source, "", ""});
  }
}

SegmentationNetwork network_from_plans(const PlansFile& plans, const std::string& configuration, int input_channels,
                                       int num_outputs, bool deep_supervision) {
  try {
    return network_from_plans(plans.json, configuration, input_channels, num_outputs, deep_supervision);
  } catch (const Error& e) {
    throw e.located({plans.source, "", ""});
  }
}

}  // namespace mlseg
