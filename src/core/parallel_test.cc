#include "cohort/core/parallel.h"

#include <atomic>
#include <memory>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace cohort {
namespace {

TEST(ThreadPoolTest, SubmitReturnsResultsAndWorkerIndex) {
  ThreadPool pool(3);
  EXPECT_EQ(pool.size(), 3u);
  std::vector<std::future<size_t>> futs;
  for (int i = 0; i < 20; ++i)
    futs.push_back(pool.submit([](size_t w) {
      return w;
    }));
  for (auto& f : futs) EXPECT_LT(f.get(), 3u);
}

TEST(ThreadPoolTest, ParallelForCoversRangeOnce) {
  ThreadPool pool(4);
  std::vector<std::atomic<int>> hits(1000);
  pool.parallel_for(0, 1000, 7, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) hits[i]++;
  });
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
}

TEST(ThreadPoolTest, ParallelForPropagatesExceptions) {
  ThreadPool pool(2);
  EXPECT_THROW(pool.parallel_for(0, 100, 1,
                                 [](int64_t lo, int64_t) {
                                   if (lo == 50) throw std::runtime_error("boom");
                                 }),
               std::runtime_error);
}

TEST(ThreadPoolTest, NestedParallelForRunsInline) {
  ThreadPool pool(2);
  auto f = pool.submit([&](size_t) {
    int64_t sum = 0;
    pool.parallel_for(0, 10, 1, [&](int64_t lo, int64_t hi) {
      sum += hi - lo;
    });
    return sum;
  });
  EXPECT_EQ(f.get(), 10);
}

}  // namespace
}  // namespace cohort

namespace cohort {
namespace {

TEST(ThreadPoolTest, HigherPriorityRunsFirstThenFifo) {
  ThreadPool pool(1);
  std::promise<void> gate;
  std::shared_future<void> open = gate.get_future().share();
  auto blocker = pool.submit([open](size_t) {
    open.wait();
    return 0;
  });
  std::mutex mu;
  std::vector<int> order;
  std::vector<std::future<int>> futs;
  const std::vector<std::pair<int, double>> jobs = {
      {1, 0.0}, {2, 5.0}, {3, 0.0}, {4, 9.0}, {5, 5.0}};
  for (auto [id, prio] : jobs) {
    futs.push_back(pool.submit(
        [&, id = id](size_t) {
          std::lock_guard<std::mutex> lock(mu);
          order.push_back(id);
          return id;
        },
        prio));
  }
  gate.set_value();
  blocker.get();
  for (auto& f : futs) f.get();
  EXPECT_EQ(order, (std::vector<int>{4, 2, 5, 1, 3}));
}

TEST(SpinUntilTest, ReportsWhetherTheConditionHeld) {
  EXPECT_TRUE(spin_until([] { return true; }, std::chrono::nanoseconds(0)));
  EXPECT_FALSE(spin_until([] { return false; }, std::chrono::nanoseconds(0)));
  EXPECT_FALSE(spin_until([] { return false; }, std::chrono::microseconds(200)));  // gives up
  int asked = 0;
  EXPECT_TRUE(spin_until([&asked] { return ++asked == 5; }, std::chrono::seconds(60)));
  EXPECT_EQ(asked, 5);  // stops at the first time it holds
}

TEST(WaitSpinningTest, ReturnsOnceReadyOrWithTheJobStillRunning) {
  ThreadPool pool(1);
  // A job held until released: the spin gives up after its budget, the job still running.
  std::promise<void> release;
  std::shared_future<void> go = release.get_future().share();
  std::future<int> running = pool.submit([go](size_t) {
    go.wait();
    return 7;
  });
  wait_spinning(running, std::chrono::microseconds(200));
  EXPECT_EQ(running.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  release.set_value();
  wait_spinning(running, std::chrono::seconds(60));  // returns when ready, not after 60 s
  EXPECT_EQ(running.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_EQ(running.get(), 7);
  // A zero budget, an invalid future and a deferred one return at once (a deferred job runs
  // only in get(): spinning would wait for nothing).
  std::future<int> done = pool.submit([](size_t) {
    return 1;
  });
  wait_spinning(done, std::chrono::nanoseconds(0));
  EXPECT_EQ(done.get(), 1);
  std::future<int> invalid;
  wait_spinning(invalid, std::chrono::seconds(60));
  std::future<int> deferred = std::async(std::launch::deferred, [] {
    return 3;
  });
  wait_spinning(deferred, std::chrono::seconds(60));
  EXPECT_EQ(deferred.get(), 3);
}

TEST(ResultSlotTest, CarriesTheValueTheExceptionAndWakesASleepingTaker) {
  ThreadPool pool(1);
  // A job held until released: a taker with a zero spin budget sleeps on the flag and is
  // woken by set(); the value (move-only here) arrives whole.
  std::promise<void> release;
  std::shared_future<void> go = release.get_future().share();
  std::atomic<size_t> ran_on{99};
  auto held = post_with_slot(pool, [go, &ran_on](size_t w) {
    go.wait();
    ran_on = w;
    return std::make_unique<int>(42);
  });
  EXPECT_FALSE(held->ready());
  std::thread releaser([&release] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    release.set_value();
  });
  std::unique_ptr<int> v = held->take(std::chrono::nanoseconds(0));
  releaser.join();
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(*v, 42);
  EXPECT_EQ(ran_on.load(), 0u);
  // What the job throws reaches the taker, as a future's get() would rethrow it.
  auto thrower = post_with_slot(pool, [](size_t) -> int {
    throw std::runtime_error("boom");
  });
  EXPECT_THROW(
      {
        try {
          thrower->take(std::chrono::milliseconds(1));
        } catch (const std::runtime_error& e) {
          EXPECT_STREQ(e.what(), "boom");
          throw;
        }
      },
      std::runtime_error);
  // Many slots, taken in an order other than the one they ran in, each with its own value.
  std::vector<std::shared_ptr<ResultSlot<int>>> slots;
  for (int i = 0; i < 200; ++i) {
    slots.push_back(post_with_slot(
        pool,
        [i](size_t) {
          return i * i;
        },
        /*priority=*/i % 7));
  }
  for (int i = 199; i >= 0; --i)
    EXPECT_EQ(slots[static_cast<size_t>(i)]->take(std::chrono::milliseconds(1)), i * i);
}

TEST(ThreadPoolTest, IdleSpinRunsEveryJobAndAsksWhetherItMaySpin) {
  // Spinning workers take jobs queued while they spin and after they gave up and slept.
  std::atomic<int> asked{0};
  int64_t sum = 0;
  {
    ThreadPool pool(2, ThreadPool::IdleSpin{std::chrono::microseconds(300), [&asked] {
                                              ++asked;
                                              return true;
                                            }});
    for (int burst = 0; burst < 5; ++burst) {
      std::vector<std::future<int>> futs;
      for (int i = 0; i < 10; ++i) {
        futs.push_back(pool.submit([i, burst](size_t) {
          return burst * 10 + i;
        }));
      }
      for (auto& f : futs) sum += f.get();
      std::this_thread::sleep_for(std::chrono::milliseconds(2));  // workers go back to sleep
    }
  }  // joined: a worker that ran a job asked when it went idle
  EXPECT_EQ(sum, 49 * 50 / 2);
  EXPECT_GT(asked.load(), 0);

  // Not allowed: no spin; the jobs still run.
  std::atomic<int> refused{0};
  {
    ThreadPool quiet(1, ThreadPool::IdleSpin{std::chrono::hours(1), [&refused] {
                                               ++refused;
                                               return false;
                                             }});
    EXPECT_EQ(quiet
                  .submit([](size_t) {
                    return 5;
                  })
                  .get(),
              5);
  }  // joined: the worker went idle after its job and asked
  EXPECT_GT(refused.load(), 0);

  // No budget: allowed() is never asked.
  std::atomic<int> never{0};
  {
    ThreadPool off(1, ThreadPool::IdleSpin{std::chrono::nanoseconds(0), [&never] {
                                             ++never;
                                             return true;
                                           }});
    EXPECT_EQ(off.submit([](size_t) {
                   return 6;
                 })
                  .get(),
              6);
  }
  EXPECT_EQ(never.load(), 0);
}

TEST(ThreadPoolTest, DestructionStopsAWorkerSpinningWithAnHourOfBudget) {
  // Returns at once (the test would time out otherwise): the spin watches the stop flag.
  ThreadPool pool(2, ThreadPool::IdleSpin{std::chrono::hours(1), {}});
  EXPECT_EQ(pool.submit([](size_t) {
                  return 1;
                })
                .get(),
            1);
}

}  // namespace
}  // namespace cohort
