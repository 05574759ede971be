#pragma once
// The processes `mpirun -np N` started, as a ProcessGroup over MPI point-to-point messages
// (MPI_Send / MPI_Recv of bytes on MPI_COMM_WORLD). Only the thread that constructed it may
// use it (MPI_THREAD_FUNNELED): the oneTBB workers never touch MPI.
#include <string>

#include "ddpm/process_group.hpp"

namespace ddpm::diffusion {

class MpiProcessGroup final : public ProcessGroup {
 public:
  // MPI_Init_thread; one per process, for the process's life.
  MpiProcessGroup(int* argc, char*** argv);
  ~MpiProcessGroup() override;  // MPI_Finalize
  MpiProcessGroup(const MpiProcessGroup&) = delete;
  MpiProcessGroup& operator=(const MpiProcessGroup&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void send(int destination, const void* data, std::size_t bytes) override;
  void receive(int source, void* data, std::size_t bytes) override;
  [[noreturn]] void abort(int exit_code) override;  // MPI_Abort: mpirun ends every rank
  const char* transport() const override { return "MPI"; }

  // Whether mpirun (Open MPI, or a PMI launcher) started this process: only then is MPI
  // initialised, so that a plain `ddpm` run never waits for an MPI runtime.
  static bool launched_by_mpirun();
  static std::string library_version();  // MPI_Get_library_version's first line

 private:
  int rank_ = 0, size_ = 1;
};

}  // namespace ddpm::diffusion
