#include "ddpm/mpi_process_group.hpp"

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdlib>

#include "tensor/error.hpp"

namespace ddpm::diffusion {
namespace {
// MPI counts are int: larger messages go in pieces.
constexpr std::size_t largest_piece = std::size_t{1} << 30;

void check_mpi(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  fail("MPI", call, " failed: ", std::string(text, static_cast<std::size_t>(length)));
}
}  // namespace

MpiProcessGroup::MpiProcessGroup(int* argc, char*** argv) {
  int provided = 0;
  check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  // Errors come back as codes (and become exceptions) instead of ending the job silently.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

MpiProcessGroup::~MpiProcessGroup() { MPI_Finalize(); }

void MpiProcessGroup::send(int destination, const void* data, std::size_t bytes) {
  const auto* at = static_cast<const char*>(data);
  do {
    const std::size_t piece = std::min(bytes, largest_piece);
    check_mpi(MPI_Send(at, static_cast<int>(piece), MPI_BYTE, destination, 0, MPI_COMM_WORLD), "MPI_Send");
    at += piece;
    bytes -= piece;
  } while (bytes > 0);
}

void MpiProcessGroup::receive(int source, void* data, std::size_t bytes) {
  auto* at = static_cast<char*>(data);
  do {
    const std::size_t piece = std::min(bytes, largest_piece);
    check_mpi(MPI_Recv(at, static_cast<int>(piece), MPI_BYTE, source, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "MPI_Recv");
    at += piece;
    bytes -= piece;
  } while (bytes > 0);
}

void MpiProcessGroup::abort(int exit_code) {
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::exit(exit_code);
}

bool MpiProcessGroup::launched_by_mpirun() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK") || std::getenv("PMI_SIZE");
}

std::string MpiProcessGroup::library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0;
  MPI_Get_library_version(text, &length);
  std::string version(text, static_cast<std::size_t>(length));
  return version.substr(0, version.find_first_of(",\n"));
}

}  // namespace ddpm::diffusion
