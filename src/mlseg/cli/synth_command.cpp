// mlseg synth OUTPUT_DIR: writes a synthetic phantom dataset in nnU-Net's layout.
#include <iostream>
#include <memory>

#include "mlseg/cli/commands.h"
#include "mlseg/core/error.h"
#include "mlseg/synth/phantom.h"

namespace mlseg::cli {

namespace {
void add_synth_command(CLI::App& app, CommandRegistry& registry) {
  struct State {
    std::string output;
    PhantomOptions options;
    std::string format = to_string(PhantomOptions{}.label_format);
    std::vector<std::int64_t> shape{options.shape_zyx.begin(), options.shape_zyx.end()};
    std::vector<double> spacing{options.spacing_zyx_mm.begin(), options.spacing_zyx_mm.end()};
    CommonFlags common;
  };
  auto state = std::make_shared<State>();
  CLI::App* command = app.add_subcommand(
      "synth", "Write a synthetic phantom dataset (nnU-Net layout) with nested, overlapping, disjoint and rare channels");
  command->add_option("output", state->output, "Dataset folder to create (must not exist or be empty)")->required();
  command->add_option("--cases", state->options.num_cases, "Training cases")->capture_default_str();
  command->add_option("--test-cases", state->options.num_test_cases, "Unlabelled cases in imagesTs")->capture_default_str();
  command->add_option("--shape", state->shape, "Image size z,y,x (z = 1 for 2D)")->expected(3)->delimiter(',')->capture_default_str();
  command->add_option("--spacing", state->spacing, "Voxel spacing z,y,x in mm")->expected(3)->delimiter(',')->capture_default_str();
  command->add_option("--channels", state->options.num_channels, "Label channels")->capture_default_str();
  command->add_option("--image-channels", state->options.num_image_channels, "Image files per case")->capture_default_str();
  command->add_option("--format", state->format, "Label format: label_map | regions | bitmask | multihot4d | channel_masks")
      ->capture_default_str();
  command->add_option("--file-ending", state->options.file_ending, "Image/label file ending (.nii.gz, .nrrd, .mha, .png, ...)")
      ->capture_default_str();
  command->add_option("--rare-every", state->options.rare_every, "The 'rare' channel appears in 1 case out of N")->capture_default_str();
  command->add_option("--noise", state->options.noise_std, "Image noise standard deviation")->capture_default_str();
  command->add_option("--seed", state->options.seed, "Random seed (same seed, same dataset)")->capture_default_str();
  command->add_option("--name", state->options.dataset_name, "Dataset name written to dataset.json")->capture_default_str();
  add_common_flags(*command, state->common, false);

  registry.add(command, [state] {
    PhantomOptions options = state->options;
    if (!parse_phantom_label_format(state->format, options.label_format)) {
      throw Error("unknown --format '" + state->format + "'",
                  "use label_map, regions, bitmask, multihot4d or channel_masks", {});
    }
    for (int axis = 0; axis < 3; ++axis) {
      options.shape_zyx[axis] = state->shape[axis];
      options.spacing_zyx_mm[axis] = state->spacing[axis];
    }
    options.threads = state->common.threads;
    options.show_progress = !state->common.quiet;
    write_phantom_dataset(state->output, options);
    if (!state->common.quiet) {
      std::cout << "synth: wrote " << options.num_cases << " training + " << options.num_test_cases
                << " test cases, " << options.num_channels << " channels (" << state->format << ") to "
                << state->output << "\n";
    }
    return 0;
  });
}

const RegisterCommand registered(kOrderSynth, add_synth_command);
}  // namespace

}  // namespace mlseg::cli
