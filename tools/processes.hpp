#pragma once
// The processes of this run of `ddpm`: the MPI job when mpirun started it (and the build
// has MPI), else one process. Rank 0 writes every file and prints progress; the other
// ranks compute their share and stay silent.
#include <string>

#include "ddpm/process_group.hpp"

namespace ddpm::tools {

// Call once, first thing in main (MPI wants argc and argv before anything else).
void start_processes(int* argc, char*** argv);
diffusion::ProcessGroup& processes();
bool is_rank_zero();
// --threads 0 means this process's share of the cores: all of them alone, cores / ranks on
// this node under mpirun (so that N ranks on one machine do not oversubscribe it).
int threads_for_this_process(int requested);
// For --version and info --system: whether MPI is built in, and this run's processes.
std::string processes_report();
// After an error on any rank: one process returns `exit_code`; an MPI job is ended on every
// rank (MPI_Abort), so no rank waits forever for one that has stopped.
int end_after_error(int exit_code);

}  // namespace ddpm::tools
