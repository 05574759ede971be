#pragma once
// Every fast kernel keeps a plain reference implementation beside it. A ReferenceKernels
// scope routes the ops through those references, so tests can compare the two paths on
// identical inputs.
#include <atomic>

namespace ddpm {

enum class KernelPath { Fast, Reference };

inline std::atomic<KernelPath>& kernel_path_setting() {
  static std::atomic<KernelPath> setting{KernelPath::Fast};
  return setting;
}
inline bool use_reference_kernels() { return kernel_path_setting().load(std::memory_order_relaxed) == KernelPath::Reference; }

class ReferenceKernels {
 public:
  ReferenceKernels() : previous_(kernel_path_setting().exchange(KernelPath::Reference)) {}
  ~ReferenceKernels() { kernel_path_setting().store(previous_); }
  ReferenceKernels(const ReferenceKernels&) = delete;
  ReferenceKernels& operator=(const ReferenceKernels&) = delete;

 private:
  KernelPath previous_;
};

}  // namespace ddpm
