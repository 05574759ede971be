#include "tools/processes.hpp"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <thread>

#ifdef DDPM_WITH_MPI
#include "ddpm/mpi_process_group.hpp"
#endif

namespace ddpm::tools {
namespace {
std::unique_ptr<diffusion::ProcessGroup>& process_group() {
  static std::unique_ptr<diffusion::ProcessGroup> group;
  return group;
}
}  // namespace

void start_processes(int* argc, char*** argv) {
#ifdef DDPM_WITH_MPI
  if (diffusion::MpiProcessGroup::launched_by_mpirun()) {
    process_group() = std::make_unique<diffusion::MpiProcessGroup>(argc, argv);
    return;
  }
#endif
  process_group() = std::make_unique<diffusion::SingleProcess>();
}

diffusion::ProcessGroup& processes() {
  if (!process_group()) process_group() = std::make_unique<diffusion::SingleProcess>();
  return *process_group();
}

bool is_rank_zero() { return processes().rank() == 0; }

int threads_for_this_process(int requested) {
  if (requested > 0) return requested;
  const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  const int ranks_here = local ? std::max(1, std::atoi(local)) : 1;
  if (processes().size() == 1 || ranks_here == 1) return 0;  // 0: every core
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / ranks_here);
}

std::string processes_report() {
#ifdef DDPM_WITH_MPI
  std::string report = "MPI: built in";
  if (processes().size() > 1 || diffusion::MpiProcessGroup::launched_by_mpirun())
    report += " (" + diffusion::MpiProcessGroup::library_version() + "), this run: " +
              std::to_string(processes().size()) + " processes";
  else
    report += ", this run: one process (start with mpirun -np N for data-parallel runs)";
  return report + "\n";
#else
  return "MPI: not built in (install libopenmpi-dev and rebuild for mpirun); one process\n";
#endif
}

int end_after_error(int exit_code) {
  if (processes().size() > 1) processes().abort(exit_code);
  return exit_code;
}

}  // namespace ddpm::tools
