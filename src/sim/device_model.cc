#include "cohort/sim/device_model.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string_view>

#include "cohort/core/format.h"
#include "cohort/core/validate.h"

namespace cohort::sim {

double Distribution::sample(Rng& rng) const {
  double v = mean;
  if (kind == "normal") {
    v = rng.normal(mean, std);
  } else if (kind == "exponential") {
    v = rng.exponential(mean);
  } else if (kind == "uniform") {
    v = rng.uniform(low, high);
  } else if (kind == "lognormal") {
    v = std::exp(rng.normal(std::log(mean) - 0.5 * sigma * sigma, sigma));
  }
  return std::clamp(v, min, max);
}

Status Distribution::validate(const std::string& path) const {
  if (kind != "constant" && kind != "normal" && kind != "exponential" && kind != "uniform" &&
      kind != "lognormal") {
    return field_error(
        path + ".distribution",
        "unknown value '" + kind + "' (known: constant, normal, exponential, uniform, lognormal)");
  }
  if (kind != "uniform") COHORT_RETURN_IF_ERROR(check_field(path + ".mean", mean, Range::above(0)));
  COHORT_RETURN_IF_ERROR(check_field(path + ".std", std, Range::at_least(0)));
  if (kind == "uniform" && !(low < high)) {
    return field_error(path + ".high", "must be > low (" + format_number(low) +
                                           ") for a uniform distribution, got " +
                                           format_number(high));
  }
  if (kind == "lognormal" && !(sigma > 0)) {
    return field_error(path + ".sigma",
                       "must be > 0 for a lognormal distribution, got " + format_number(sigma));
  }
  if (!(min <= max)) {
    return field_error(path + ".max",
                       "must be >= min (" + format_number(min) + "), got " + format_number(max));
  }
  return Status();
}

double Availability::sample(Rng& rng, bool online) const {
  const double mean = online ? mean_online_s : mean_offline_s;
  return distribution == "constant" ? mean : rng.exponential(mean);
}

Status ClientDynamics::validate() const {
  COHORT_RETURN_IF_ERROR(check_field("clients.jitter", jitter, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(check_field("clients.dropout", dropout, Range::half_open(0, 1)));
  COHORT_RETURN_IF_ERROR(
      check_field("clients.task_timeout_factor", task_timeout_factor, Range::at_least(1)));
  const Availability& a = availability;
  COHORT_RETURN_IF_ERROR(
      check_field("clients.availability.mean_online_s", a.mean_online_s, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(
      check_field("clients.availability.mean_offline_s", a.mean_offline_s, Range::above(0)));
  if (a.distribution != "exponential" && a.distribution != "constant") {
    return field_error("clients.availability.distribution",
                       "unknown value '" + a.distribution + "' (known: exponential, constant)");
  }
  return Status();
}

Status PopulationOptions::validate() const {
  COHORT_RETURN_IF_ERROR(
      check_field("clients.count", num_clients, Range::at_least(trace.empty() ? 1 : 0)));
  COHORT_RETURN_IF_ERROR(speed.validate("clients.speed"));
  COHORT_RETURN_IF_ERROR(up_mbps.validate("clients.up_mbps"));
  COHORT_RETURN_IF_ERROR(down_mbps.validate("clients.down_mbps"));
  COHORT_RETURN_IF_ERROR(latency_ms.validate("clients.latency_ms"));
  return dynamics.validate();
}

namespace {

constexpr double kBytesPerMbit = 125000.0;

std::string_view trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> out;
  for (size_t start = 0;;) {
    const auto comma = line.find(',', start);
    out.push_back(trim(line.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start)));
    if (comma == std::string_view::npos) return out;
    start = comma + 1;
  }
}

// A field quoted back in messages, shortened so a binary file does not flood the terminal.
std::string quoted(std::string_view s) {
  std::string t(s.substr(0, 40));
  if (s.size() > 40) t += "...";
  return "'" + t + "'";
}

constexpr std::array<std::string_view, 5> kTraceColumns = {"client", "steps_per_s", "up_mbps",
                                                           "down_mbps", "latency_ms"};
constexpr const char* kTraceHeader = "client,steps_per_s,up_mbps,down_mbps,latency_ms";

}  // namespace

Result<std::vector<DeviceProfile>> parse_device_trace(const std::string& text,
                                                      const std::string& source,
                                                      int64_t num_clients) {
  auto at = [&](int64_t line, const std::string& what) {
    return Status::invalid_argument(source + ":" + std::to_string(line) + ": " + what);
  };
  // column[k] = position of kTraceColumns[k] in the file's header.
  std::array<size_t, 5> column{};
  bool have_header = false;
  struct Row {
    int64_t line;
    DeviceProfile profile;
  };
  std::vector<std::optional<Row>> rows;  // by client id
  int64_t num_rows = 0;
  int64_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    const auto nl = text.find('\n', pos);
    std::string_view line(text.data() + pos, (nl == std::string::npos ? text.size() : nl) - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::string_view content = trim(line);
    if (content.empty() || content.front() == '#') continue;
    const std::vector<std::string_view> fields = split_fields(content);

    if (!have_header) {
      std::array<bool, 5> seen{};
      for (size_t i = 0; i < fields.size(); ++i) {
        const auto it = std::find(kTraceColumns.begin(), kTraceColumns.end(), fields[i]);
        if (it == kTraceColumns.end()) {
          return at(line_no, "unknown column " + quoted(fields[i]) + " in the header (expected " +
                                 kTraceHeader + ")");
        }
        const auto k = static_cast<size_t>(it - kTraceColumns.begin());
        if (seen[k]) return at(line_no, "column '" + std::string(*it) + "' appears twice");
        seen[k] = true;
        column[k] = i;
      }
      for (size_t k = 0; k < kTraceColumns.size(); ++k) {
        if (!seen[k]) {
          return at(line_no, "the header has no column '" + std::string(kTraceColumns[k]) +
                                 "' (expected " + kTraceHeader + ")");
        }
      }
      have_header = true;
      continue;
    }

    if (fields.size() != kTraceColumns.size()) {
      return at(line_no, "expected 5 comma-separated fields, got " + std::to_string(fields.size()));
    }
    // Integer id first, so a later error can name the client.
    const std::string_view id_text = fields[column[0]];
    int64_t id = -1;
    {
      auto r = std::from_chars(id_text.data(), id_text.data() + id_text.size(), id);
      if (r.ec != std::errc() || r.ptr != id_text.data() + id_text.size() || id < 0) {
        return at(line_no, "client: expected a non-negative integer id, got " + quoted(id_text));
      }
    }
    std::array<double, 4> values{};
    for (size_t k = 1; k < kTraceColumns.size(); ++k) {
      const std::string_view f = fields[column[k]];
      const std::string name(kTraceColumns[k]);
      double v = 0;
      auto r = std::from_chars(f.data(), f.data() + f.size(), v);
      if (f.empty() || r.ec != std::errc() || r.ptr != f.data() + f.size() || !std::isfinite(v)) {
        return at(line_no, name + ": expected a finite number, got " + quoted(f));
      }
      const bool is_latency = k == 4;
      if (is_latency ? !(v >= 0) : !(v > 0)) {
        return at(line_no,
                  name + ": must be " + (is_latency ? ">= 0" : "> 0") + ", got " + std::string(f));
      }
      values[k - 1] = v;
    }
    ++num_rows;
    if (num_clients > 0 && id >= num_clients) continue;  // beyond the population: unused
    const auto slot = static_cast<size_t>(id);
    if (slot >= rows.size()) {
      // Ids are dense in a valid trace (0..rows-1), and a row takes more than one byte, so an
      // id beyond the text's size is a typo; it must not allocate its range.
      if (slot >= text.size()) {
        return at(line_no, "client " + std::to_string(id) +
                               " is out of range: with clients.count 0 the ids must be "
                               "0..rows-1, and the file cannot hold that many rows");
      }
      rows.resize(slot + 1);
    }
    if (rows[slot]) {
      return at(line_no, "client " + std::to_string(id) + " already has a row (line " +
                             std::to_string(rows[slot]->line) + ")");
    }
    DeviceProfile p;
    p.speed = values[0];
    p.up_bytes_per_s = values[1] * kBytesPerMbit;
    p.down_bytes_per_s = values[2] * kBytesPerMbit;
    p.latency_s = values[3] / 1000.0;
    rows[slot] = Row{line_no, p};
  }
  if (!have_header) {
    return at(std::max<int64_t>(line_no, 1),
              std::string("expected the header ") + kTraceHeader + ", got an empty file");
  }
  if (num_rows == 0) return Status::invalid_argument(source + ": no client rows after the header");
  const int64_t n = num_clients > 0 ? num_clients : num_rows;
  const std::string needed =
      num_clients > 0 ? " (clients.count is " + std::to_string(num_clients) + ")"
                      : " (clients.count is 0, so the trace's " + std::to_string(num_rows) +
                            " rows must be clients 0.." + std::to_string(num_rows - 1) + ")";
  std::vector<DeviceProfile> out;
  out.reserve(static_cast<size_t>(n));
  for (int64_t id = 0; id < n; ++id) {
    const auto slot = static_cast<size_t>(id);
    if (slot >= rows.size() || !rows[slot]) {
      return Status::invalid_argument(source + ": no row for client " + std::to_string(id) +
                                      needed);
    }
    out.push_back(rows[slot]->profile);
  }
  return out;
}

Result<std::vector<DeviceProfile>> read_device_trace(const std::string& path, int64_t num_clients) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) {
    return Status::not_found("cannot read device trace '" + path +
                             "' (clients.trace): " + std::strerror(errno));
  }
  std::string text;
  char buf[1 << 14];
  size_t got = 0;
  while ((got = std::fread(buf, 1, sizeof buf, f.get())) > 0) text.append(buf, got);
  if (std::ferror(f.get())) {
    return Status::not_found("cannot read device trace '" + path +
                             "' (clients.trace): " + std::strerror(errno));
  }
  return parse_device_trace(text, path, num_clients);
}

Result<std::vector<DeviceProfile>> draw_population(const PopulationOptions& options,
                                                   uint64_t seed) {
  COHORT_RETURN_IF_ERROR(options.validate());
  if (!options.trace.empty()) return read_device_trace(options.trace, options.num_clients);
  // One stream per property, so changing e.g. the bandwidth distribution keeps the speeds.
  Rng speed_rng = Rng::derive(seed, "population.speed");
  Rng up_rng = Rng::derive(seed, "population.up");
  Rng down_rng = Rng::derive(seed, "population.down");
  Rng lat_rng = Rng::derive(seed, "population.latency");
  std::vector<DeviceProfile> out(static_cast<size_t>(options.num_clients));
  for (auto& p : out) {
    p.speed = std::max(1e-9, options.speed.sample(speed_rng));
    p.up_bytes_per_s = std::max(1e-9, options.up_mbps.sample(up_rng) * kBytesPerMbit);
    p.down_bytes_per_s = std::max(1e-9, options.down_mbps.sample(down_rng) * kBytesPerMbit);
    p.latency_s = std::max(0.0, options.latency_ms.sample(lat_rng) / 1000.0);
  }
  return out;
}

}  // namespace cohort::sim
