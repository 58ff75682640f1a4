#pragma once
// PlanOptions: every default of `mlseg plan`, named once. The numbers are nnU-Net v2's default
// planner's (experiment_planners/default_experiment_planner.py, "P:" lines in ANCHOR_FACTS.md §7).
#include <string>
#include <vector>

namespace mlseg {

/// `--preset`: nnU-Net's GPU-memory budget, or a small budget for training on a 2-core CPU.
enum class PlanPreset { gpu, cpu };

/// `--planner`: which of nnU-Net's experiment planners: the default one (PlainConvUNet) or the
/// Residual Encoder presets (residual_encoder_unet_planners.py: nnUNetPlannerResEncM/L/XL).
enum class NetworkPlanner { plain, resenc_m, resenc_l, resenc_xl };

/// "default" | "resenc-m" | "resenc-l" | "resenc-xl"; throws mlseg::Error naming the choices.
NetworkPlanner parse_network_planner(const std::string& name);
std::string to_string(NetworkPlanner planner);

struct PlanOptions {
  std::string work_dir;  ///< empty: $MLSEG_WORK, else ./mlseg_work
  /// --gpu-memory-gb: scales the feature-map budget (nnU-Net's gpu_memory_target_in_gb, 8).
  double gpu_memory_gb = 8.0;
  PlanPreset preset = PlanPreset::gpu;
  /// --encoding: auto (labels.json's recommendation; powerset falls back to sigmoid when its
  /// classes do not fit) | sigmoid | softmax | powerset.
  std::string encoding = "auto";
  /// powerset: the most classes (combinations + background) planned (analyze recommends powerset
  /// up to 64 observed combinations).
  int powerset_max_classes = 256;
  /// powerset: the output-layer tensors of one batch (K x batch x patch voxels x
  /// powerset_bytes_per_output_voxel) may take at most this fraction of gpu_memory_gb.
  double powerset_memory_fraction = 0.25;
  /// Bytes per class and voxel of the output tensors a training step holds: logits, softmax,
  /// log-softmax, their gradients, the one-hot target and deep supervision's coarser copies.
  double powerset_bytes_per_output_voxel = 32;
  bool show_progress = true;  ///< progress of the analyze run when the analysis files are missing
  int threads = 0;            ///< analyze's threads when it has to run; 0 = all cores
  bool write_files = true;    ///< false: compute only (tests)

  // --- target spacing (P:171-196) ---
  /// An axis is anisotropic when its spacing is more than this times the others' (ANISO_THRESHOLD).
  double anisotropy_threshold = 3.0;
  /// The anisotropic axis's target spacing is this percentile of its spacings.
  double anisotropic_spacing_percentile = 10.0;

  // --- network (P:50-65, network_topology.py) ---
  NetworkPlanner planner = NetworkPlanner::plain;
  /// ResEnc planners: BasicBlockD blocks per encoder stage, cut to the number of stages
  /// (UNet_blocks_per_stage_encoder), and convs per decoder stage (UNet_blocks_per_stage_decoder).
  std::vector<int> residual_blocks_per_stage{1, 3, 4, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6};
  int residual_decoder_convs = 1;
  int base_features = 32;        ///< features of stage 0; doubled per stage
  int max_features_3d = 320;
  int max_features_2d = 512;
  int min_feature_map_edge = 4;  ///< bottleneck edge >= this (UNet_featuremap_min_edge_length)
  int convs_per_stage = 2;       ///< encoder and decoder

  // --- patch and batch (P:228-378) ---
  double initial_patch_edge_3d = 256;   ///< initial patch volume 256^3 ...
  double initial_patch_edge_2d = 2048;  ///< ... or 2048^2
  /// compute_conv_feature_map_size budget at reference_gpu_memory_gb and the reference batch size.
  double reference_feature_map_3d = 560e6;
  double reference_feature_map_2d = 85e6;
  double reference_gpu_memory_gb = 8.0;
  int reference_batch_size_3d = 2;
  int reference_batch_size_2d = 12;
  int min_batch_size = 2;
  double max_dataset_fraction_per_batch = 0.05;  ///< one batch covers at most 5% of the dataset's voxels (ResEnc M/L/XL: 1)
  /// --preset cpu: the feature-map budget is this fraction of the 8 GB reference (35e6 in 3D, so
  /// one batch holds about 2 x 35e6 = 7e7 feature-map voxels). An estimate, not measured: a 2-core
  /// CPU is assumed to run PlainConvUNet's forward and backward at about 3.5e7 feature-map voxels
  /// per second, i.e. about one iteration per 2 s.
  double cpu_budget_fraction = 1.0 / 16.0;

  // --- configurations (P:445-482) ---
  /// 3d_lowres is planned when the 3d_fullres patch covers less than this fraction of the median image.
  double lowres_creation_threshold = 0.25;
  /// Lowres spacing grows by this factor per step (nnU-Net v2 today: 1.03; it used to be 1.01).
  double lowres_spacing_step = 1.03;
  /// 3d_lowres is dropped when the fullres median image is less than this many times larger.
  double lowres_min_size_ratio = 2.0;

  // --- normalisation (P:198-210) ---
  /// zscore uses the nonzero mask when cropping left less than this of the median image.
  double mask_for_norm_threshold = 0.75;

  // --- validation coverage ---
  double foreground_oversample = 0.33;  ///< nnU-Net's oversample_foreground_percent
  double val_coverage_probability = 0.99;  ///< each channel seen with at least this probability
  int min_val_iterations = 50;             ///< nnU-Net's num_val_iterations_per_epoch
};

/// `options` with nnU-Net's settings of `planner` (ResEnc M/L/XL: the ResidualEncoderUNet, the
/// reference feature-map sizes 680e6 / 2.1e9 / 3.6e9 (3D) and 135e6 / 380e6 / 560e6 (2D) at their
/// memory targets 8 / 24 / 40 GB, max_dataset_covered 1). `keep_gpu_memory`: the caller set
/// gpu_memory_gb itself (--gpu-memory-gb), else it becomes the preset's target.
PlanOptions with_network_planner(PlanOptions options, NetworkPlanner planner, bool keep_gpu_memory = false);

/// plans.json's plans_name for `planner` (mlsegPlans, mlsegResEncUNetMPlans, ...).
std::string plans_name_for(NetworkPlanner planner);

}  // namespace mlseg
