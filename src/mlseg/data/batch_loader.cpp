#include "mlseg/data/batch_loader.h"

#include <torch/cuda.h>

#include <condition_variable>
#include <exception>
#include <limits>
#include <map>
#include <mutex>
#include <thread>

#include "mlseg/core/error.h"
#include "mlseg/core/parallel.h"
#include "mlseg/data/patch_sampler.h"
#include "mlseg/data/preprocessed_store.h"
#include "mlseg/labels/label_code.h"

namespace mlseg {
namespace {

thread_local std::vector<std::string> noted_cases;

std::string join_ids(const std::vector<std::string>& ids) {
  std::string text;
  for (const auto& id : ids) text += (text.empty() ? "" : ", ") + id;
  return text;
}

std::string shape_text(const torch::Tensor& tensor) {
  std::string text = "[";
  for (std::int64_t d = 0; d < tensor.dim(); ++d) text += (d ? ", " : "") + std::to_string(tensor.size(d));
  return text + "]";
}

}  // namespace

int default_loader_workers() { return std::max(1, default_thread_count() - 1); }

void note_batch_cases(std::vector<std::string> case_ids) { noted_cases = std::move(case_ids); }

struct BatchLoader::State {
  MakeBatch make_batch;
  LoaderOptions options;
  bool pin = false;
  std::int64_t end = 0;  ///< one past the last batch index

  struct Result {
    Batch batch;
    std::exception_ptr error;
    std::vector<std::string> case_ids;
  };
  std::mutex mutex;
  std::condition_variable space;  ///< workers wait for room ahead of the consumer
  std::condition_variable ready;  ///< the consumer waits for its batch
  std::map<std::int64_t, Result> results;
  std::int64_t next_claim = 0;
  std::int64_t next_delivery = 0;
  bool stop = false;
  std::vector<std::thread> workers;

  void work() {
    for (;;) {
      std::int64_t index = 0;
      {
        std::unique_lock<std::mutex> lock(mutex);
        space.wait(lock, [&] { return stop || next_claim >= end || next_claim < next_delivery + options.prefetch(); });
        if (stop || next_claim >= end) return;
        index = next_claim++;
      }
      Result result;
      noted_cases.clear();
      try {
        result.batch = make_batch(index);
        result.batch.index = index;
        if (result.batch.case_ids.empty()) result.batch.case_ids = noted_cases;
        if (pin) {
          for (auto& tensor : result.batch.tensors) {
            if (tensor.defined() && !tensor.device().is_cuda()) tensor = tensor.pin_memory();
          }
        }
      } catch (...) {
        result.error = std::current_exception();
        result.case_ids = noted_cases;
      }
      {
        std::lock_guard<std::mutex> lock(mutex);
        results.emplace(index, std::move(result));
      }
      ready.notify_all();
    }
  }
};

BatchLoader::BatchLoader(MakeBatch make_batch, LoaderOptions options) : state_(std::make_unique<State>()) {
  if (!make_batch) throw Error("BatchLoader needs a make_batch function", "pass the function that builds batch i");
  if (options.workers() < 1 || options.prefetch() < 1) {
    throw Error("LoaderOptions needs workers >= 1 and prefetch >= 1 (got " + std::to_string(options.workers()) + " and " +
                    std::to_string(options.prefetch()) + ")",
                "pass positive values (the defaults are max(1, cores - 1) workers and 4 batches ahead)");
  }
  State& s = *state_;
  s.make_batch = std::move(make_batch);
  s.options = options;
  s.pin = options.pin_memory() && torch::cuda::is_available();
  s.next_claim = s.next_delivery = options.first_batch();
  s.end = options.num_batches() < 0 ? std::numeric_limits<std::int64_t>::max()
                                    : options.first_batch() + options.num_batches();
  s.workers.reserve(static_cast<std::size_t>(options.workers()));
  for (int w = 0; w < options.workers(); ++w) s.workers.emplace_back([&s] { s.work(); });
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stop = true;
  }
  state_->space.notify_all();
  for (auto& worker : state_->workers) worker.join();
}

const LoaderOptions& BatchLoader::options() const { return state_->options; }

std::optional<Batch> BatchLoader::next() {
  State& s = *state_;
  State::Result result;
  std::int64_t index = 0;
  {
    std::unique_lock<std::mutex> lock(s.mutex);
    if (s.next_delivery >= s.end) return std::nullopt;
    index = s.next_delivery;
    s.ready.wait(lock, [&] { return s.results.count(index) > 0; });
    auto found = s.results.find(index);
    result = std::move(found->second);
    s.results.erase(found);
    ++s.next_delivery;
  }
  s.space.notify_all();
  if (!result.error) return std::move(result.batch);

  const std::string cases = result.case_ids.empty() ? "" : " (cases " + join_ids(result.case_ids) + ")";
  const std::string what = "making training batch " + std::to_string(index) + cases + " failed: ";
  try {
    std::rethrow_exception(result.error);
  } catch (const Error& error) {
    throw Error(what + error.problem(), error.fix(), error.where()).with_code(error.code());
  } catch (const std::exception& error) {
    throw Error(what + error.what(), "see the message; rerun with --threads 1 to reproduce it in order");
  } catch (...) {
    throw Error(what + "unknown exception", "rerun with --threads 1 to reproduce it in order");
  }
}

Batch assemble_batch(std::int64_t batch_index, const std::vector<std::vector<torch::Tensor>>& samples,
                     std::vector<std::string> case_ids) {
  Batch batch;
  batch.index = batch_index;
  batch.case_ids = std::move(case_ids);
  if (samples.empty()) return batch;
  const std::size_t count = samples.front().size();
  for (std::size_t b = 0; b < samples.size(); ++b) {
    if (samples[b].size() != count) {
      throw Error("sample " + std::to_string(b) + " of batch " + std::to_string(batch_index) + " has " +
                      std::to_string(samples[b].size()) + " tensors, sample 0 has " + std::to_string(count),
                  "make every sample produce the same tensors");
    }
  }
  std::vector<torch::Tensor> column(samples.size());
  for (std::size_t k = 0; k < count; ++k) {
    for (std::size_t b = 0; b < samples.size(); ++b) {
      const torch::Tensor& tensor = samples[b][k];
      const torch::Tensor& first = samples.front()[k];
      if (!tensor.defined() || tensor.sizes() != first.sizes() || tensor.scalar_type() != first.scalar_type()) {
        throw Error("tensor " + std::to_string(k) + " of sample " + std::to_string(b) + " in batch " +
                        std::to_string(batch_index) + " is " + (tensor.defined() ? shape_text(tensor) : "undefined") +
                        " but sample 0's is " + shape_text(first) + " (shapes and types must agree)",
                    "make every sample produce tensors of the same shape and type");
      }
      column[b] = tensor;
    }
    batch.tensors.push_back(torch::stack(column).contiguous());
  }
  return batch;
}

Batch cut_patch_batch(const PreprocessedStore& store, const PatchSampler& sampler, std::int64_t batch_index,
                      SamplingReportAccumulator* report) {
  const std::vector<PatchDraw> draws = sampler.sample_batch(batch_index);
  std::vector<std::string> case_ids;
  for (const auto& draw : draws) case_ids.push_back(store.case_ids()[draw.case_index]);
  note_batch_cases(case_ids);
  // Cut straight into the batch tensors: no per-sample tensors, no stacking copy.
  const auto& size = sampler.options().patch_size_zyx();
  const CodeLayout layout = code_layout(store.num_channels());
  const auto batch_size = static_cast<std::int64_t>(draws.size());
  torch::Tensor images = torch::empty({batch_size, store.num_input_channels(), size[0], size[1], size[2]}, torch::kFloat);
  torch::Tensor codes = torch::empty({batch_size, layout.num_words, size[0], size[1], size[2]}, layout.dtype);
  for (std::int64_t b = 0; b < batch_size; ++b) {
    torch::Tensor image = images[b];
    CodeVolume patch_codes{codes[b], store.num_channels()};
    store.cut_patch_into(draws[b].case_index, draws[b].begin_zyx, image, patch_codes.words);
    if (report != nullptr) report->add(patch_codes, draws[b]);
  }
  return Batch{batch_index, {std::move(images), std::move(codes)}, std::move(case_ids)};
}

}  // namespace mlseg
