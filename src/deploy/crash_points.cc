#include "deploy/crash_points.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

namespace cohort::deploy {

namespace {

struct Target {
  std::string point;
  long hits = 1;
};

// Parsed once; nullptr when the variable is unset (the common case).
const Target* target() {
  static const Target* t = [] () -> const Target* {
    const char* env = std::getenv("COHORT_TEST_CRASH_AT");
    if (env == nullptr || *env == '\0') return nullptr;
    auto* parsed = new Target;
    const char* colon = std::strchr(env, ':');
    parsed->point = colon ? std::string(env, colon) : std::string(env);
    if (colon) parsed->hits = std::max(1L, std::strtol(colon + 1, nullptr, 10));
    return parsed;
  }();
  return t;
}

std::atomic<long> g_hits{0};

}  // namespace

void crash_point(const char* point) {
  const Target* t = target();
  if (t == nullptr || t->point != point) return;
  if (g_hits.fetch_add(1) + 1 == t->hits) ::kill(::getpid(), SIGKILL);
}

}  // namespace cohort::deploy
