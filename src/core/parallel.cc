#include "cohort/core/parallel.h"

#include <atomic>
#include <exception>
#include <memory>

namespace cohort {

namespace {
thread_local const ThreadPool* t_current_pool = nullptr;
}  // namespace

ThreadPool::ThreadPool(size_t num_threads) : ThreadPool(num_threads, IdleSpin{}) {}

ThreadPool::ThreadPool(size_t num_threads, IdleSpin idle_spin) : idle_spin_(std::move(idle_spin)) {
  if (num_threads == 0) num_threads = std::max(1u, std::thread::hardware_concurrency());
  workers_.reserve(num_threads);
  for (size_t i = 0; i < num_threads; ++i) {
    workers_.emplace_back([this, i] {
      worker_loop(i);
    });
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

bool ThreadPool::in_worker() const { return t_current_pool == this; }

void ThreadPool::enqueue(std::function<void(size_t)> job, double priority) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push(Job{priority, next_seq_++, std::move(job)});
    queued_.fetch_add(1, std::memory_order_relaxed);
  }
  cv_.notify_one();
}

void ThreadPool::worker_loop(size_t index) {
  t_current_pool = this;
  for (;;) {
    spin_while_idle();
    std::function<void(size_t)> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] {
        return stop_ || !queue_.empty();
      });
      if (queue_.empty()) return;  // stop_ and drained
      // priority_queue::top() is const; the job is moved out right before pop().
      job = std::move(const_cast<Job&>(queue_.top()).fn);
      queue_.pop();
      queued_.fetch_sub(1, std::memory_order_relaxed);
    }
    job(index);
  }
}

void ThreadPool::spin_while_idle() const {
  if (idle_spin_.budget.count() <= 0 || queued_.load(std::memory_order_relaxed) > 0) return;
  if (idle_spin_.allowed && !idle_spin_.allowed()) return;
  spin_until(
      [this] {
        return queued_.load(std::memory_order_relaxed) > 0 ||
               stopping_.load(std::memory_order_relaxed);
      },
      idle_spin_.budget);
}

void ThreadPool::parallel_for(int64_t begin, int64_t end, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& fn) {
  if (end <= begin) return;
  if (grain < 1) grain = 1;
  const int64_t n_chunks = (end - begin + grain - 1) / grain;
  if (n_chunks == 1 || workers_.size() == 1 || in_worker()) {
    for (int64_t c = 0; c < n_chunks; ++c) {
      const int64_t lo = begin + c * grain;
      fn(lo, std::min(end, lo + grain));
    }
    return;
  }
  // Chunks are claimed dynamically from a shared counter; the caller works too.
  struct Shared {
    std::atomic<int64_t> next{0};
    std::atomic<int64_t> done{0};
    std::mutex mu;
    std::condition_variable cv;
    std::exception_ptr error;
  };
  auto shared = std::make_shared<Shared>();
  auto run = [shared, begin, end, grain, n_chunks, &fn]() {
    for (;;) {
      const int64_t c = shared->next.fetch_add(1);
      if (c >= n_chunks) return;
      const int64_t lo = begin + c * grain;
      try {
        fn(lo, std::min(end, lo + grain));
      } catch (...) {
        std::lock_guard<std::mutex> lock(shared->mu);
        if (!shared->error) shared->error = std::current_exception();
      }
      if (shared->done.fetch_add(1) + 1 == n_chunks) {
        std::lock_guard<std::mutex> lock(shared->mu);
        shared->cv.notify_all();
      }
    }
  };
  // The caller works too, so size() threads in all take part.
  const size_t helpers = std::min<size_t>(workers_.size() - 1, static_cast<size_t>(n_chunks - 1));
  for (size_t i = 0; i < helpers; ++i)
    enqueue(
        [run](size_t) {
          run();
        },
        1e300);
  run();
  std::unique_lock<std::mutex> lock(shared->mu);
  shared->cv.wait(lock, [&] {
    return shared->done.load() == n_chunks;
  });
  if (shared->error) std::rethrow_exception(shared->error);
}

namespace {
std::atomic<size_t> g_kernel_threads{0};
}

void set_kernel_threads(size_t n) { g_kernel_threads.store(n); }

size_t kernel_threads() { return kernel_pool().size(); }

ThreadPool& kernel_pool() {
  static ThreadPool pool(g_kernel_threads.load());
  return pool;
}

}  // namespace cohort
