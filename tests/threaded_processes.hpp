#pragma once
// N "processes" as threads of this test, exchanging messages through in-memory mailboxes:
// the ProcessGroup collectives and the trainer's split run as under mpirun, without it.
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "ddpm/process_group.hpp"

namespace ddpm::testing {

class Mailboxes {
 public:
  void put(int from, int to, const void* data, std::size_t bytes) {
    const auto* begin = static_cast<const char*>(data);
    {
      std::lock_guard lock(mutex_);
      boxes_[{from, to}].emplace_back(begin, begin + bytes);
    }
    arrived_.notify_all();
  }
  void take(int from, int to, void* data, std::size_t bytes) {
    std::unique_lock lock(mutex_);
    auto& box = boxes_[{from, to}];
    arrived_.wait(lock, [&] { return !box.empty(); });
    if (box.front().size() != bytes) throw std::runtime_error("message of an unexpected size");
    std::memcpy(data, box.front().data(), bytes);
    box.pop_front();
  }

 private:
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::map<std::pair<int, int>, std::deque<std::vector<char>>> boxes_;
};

class ThreadedProcess final : public diffusion::ProcessGroup {
 public:
  ThreadedProcess(Mailboxes& mailboxes, int rank, int size) : mailboxes_(mailboxes), rank_(rank), size_(size) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void send(int to, const void* data, std::size_t bytes) override { mailboxes_.put(rank_, to, data, bytes); }
  void receive(int from, void* data, std::size_t bytes) override { mailboxes_.take(from, rank_, data, bytes); }
  [[noreturn]] void abort(int) override { throw std::runtime_error("abort"); }
  const char* transport() const override { return "threads"; }

 private:
  Mailboxes& mailboxes_;
  int rank_, size_;
};

// Runs body(process) on `size` threads, one per rank; returns when all have finished.
inline void run_processes(int size, const std::function<void(diffusion::ProcessGroup&)>& body) {
  Mailboxes mailboxes;
  std::vector<std::thread> threads;
  for (int rank = 0; rank < size; ++rank)
    threads.emplace_back([&, rank] {
      ThreadedProcess process(mailboxes, rank, size);
      body(process);
    });
  for (std::thread& thread : threads) thread.join();
}

}  // namespace ddpm::testing
