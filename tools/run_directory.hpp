#pragma once
// The output directory of a training run, held for the run's life: created if missing,
// locked against a second run, cleared of the temporary files of writes a kill
// interrupted, and the place its files are named from.
#include <cstdint>
#include <string>

namespace ddpm::tools {

class RunDirectory {
 public:
  // Throws, naming the directory, when it cannot be created or written, or another run
  // holds it (the message names that process). The lock is an flock on DIR/.lock, which
  // the kernel drops when the process ends, however it ends.
  explicit RunDirectory(const std::string& path);
  ~RunDirectory();
  RunDirectory(const RunDirectory&) = delete;
  RunDirectory& operator=(const RunDirectory&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const;
  std::string checkpoint_path() const { return checkpoint_in(path_); }
  // Where a run in `directory` keeps its checkpoint, for processes that only read it (the
  // ranks of an MPI run other than rank 0, which holds the directory).
  static std::string checkpoint_in(const std::string& directory);
  std::string log_path() const { return file("log.csv"); }
  bool holds_run() const;  // a checkpoint or a log is there

  // Cuts log.csv back to the rows of steps up to `step`: a kill between a log line and the
  // next checkpoint leaves rows the resumed run writes again, and a kill within a line
  // leaves a last row without its newline; both go.
  void truncate_log(std::int64_t step) const;

 private:
  std::string path_;
  int lock_descriptor_ = -1;
};

}  // namespace ddpm::tools
