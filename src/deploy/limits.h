// What keeps one client from breaking the federation through the transport: server-side
// deadlines on every stream (idle time between messages, total time, a bytes-per-second
// floor), per-client limits on concurrent streams and on call rates, and a memory budget for
// the uploads being assembled. Beyond a limit a call is refused with RESOURCE_EXHAUSTED (or,
// for a stream already running, cancelled) and holds nothing. Internal to cohort_deploy.
//
// Thread safety: every class here is safe to call from any gRPC handler thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "cohort/core/clock.h"
#include "cohort/core/status.h"
#include "cohort/core/types.h"
#include "cohort/deploy/deploy_config.h"

namespace cohort::deploy {

// Cancels streams that stall: no message for stream_idle_timeout_s, longer than stream_max_s,
// or slower than stream_min_bytes_per_s on average once stream_grace_s has passed.
class StreamWatchdog {
 public:
  explicit StreamWatchdog(const DeployConfig& limits);
  ~StreamWatchdog();

  // One stream, registered for its lifetime.
  class Stream {
   public:
    ~Stream();
    // A message of `bytes` arrived or was sent.
    void progress(int64_t bytes);
    // The stream waits on the server (a push slot): the time since the last progress counts
    // neither as idle nor against the rate floor.
    void excuse();
    // Why the watchdog cancelled the stream ("" while it runs).
    std::string cancelled_reason() const;

   private:
    friend class StreamWatchdog;
    Stream(StreamWatchdog* dog, uint64_t id) : dog_(dog), id_(id) {}
    StreamWatchdog* dog_;
    uint64_t id_;
  };
  std::unique_ptr<Stream> watch(grpc::ServerContextBase* ctx, const std::string& what);

 private:
  struct Entry {
    grpc::ServerContextBase* ctx = nullptr;
    std::string what;
    double start = 0, last = 0;
    int64_t bytes = 0;
    std::string reason;
  };
  void run();

  const DeployConfig& limits_;
  SteadyClock clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, Entry> entries_;
  uint64_t next_id_ = 1;
  bool stop_ = false;
  std::thread thread_;
};

// Per-client call rates (a token bucket of max_calls_per_s, burst twice that) and concurrent
// streams (max_streams_per_client).
class ClientLimits {
 public:
  explicit ClientLimits(const DeployConfig& limits) : limits_(limits) {}
  // ResourceExhausted when client `id` calls faster than allowed.
  Status admit_call(ClientId id);
  // A stream slot for client `id`, or ResourceExhausted when it has too many open.
  class Slot {
   public:
    ~Slot();

   private:
    friend class ClientLimits;
    Slot(ClientLimits* owner, ClientId id) : owner_(owner), id_(id) {}
    ClientLimits* owner_;
    ClientId id_;
  };
  Result<std::unique_ptr<Slot>> open_stream(ClientId id, const char* what);

 private:
  struct Bucket {
    double tokens = 0;
    double at = -1;
  };
  const DeployConfig& limits_;
  SteadyClock clock_;
  std::mutex mu_;
  std::map<ClientId, Bucket> buckets_;
  std::map<ClientId, int64_t> streams_;
};

// Bytes of uploads being assembled, against max_upload_bytes.
class UploadBudget {
 public:
  explicit UploadBudget(int64_t max_bytes) : max_bytes_(max_bytes) {}
  // Reserves `bytes` or returns ResourceExhausted naming the budget (nothing reserved).
  Status reserve(int64_t bytes);
  void release(int64_t bytes);
  int64_t max_bytes() const { return max_bytes_; }

 private:
  const int64_t max_bytes_;
  std::mutex mu_;
  int64_t reserved_ = 0;
};

// Lines to stderr, at most `per_window` per `window_s` seconds; the ones dropped are counted
// and reported with the next line that gets through.
class LogLimiter {
 public:
  LogLimiter(int64_t per_window, double window_s) : per_window_(per_window), window_s_(window_s) {}
  void log(const std::string& line);

 private:
  const int64_t per_window_;
  const double window_s_;
  SteadyClock clock_;
  std::mutex mu_;
  double window_start_ = 0;
  int64_t in_window_ = 0;
  int64_t dropped_ = 0;
};

}  // namespace cohort::deploy
