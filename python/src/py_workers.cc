#include "py_workers.h"

#include <Python.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cohort/core/config_record_json.h"
#include "cohort/core/metrics.h"

namespace cohort::python {

namespace {

// ---- framing ---------------------------------------------------------------------------------

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool read_all(int fd, char* p, size_t n) {
  while (n > 0) {
    const ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool send_msg(int fd, const std::string& m) {
  const uint64_t n = m.size();
  return write_all(fd, reinterpret_cast<const char*>(&n), sizeof n) && write_all(fd, m.data(), m.size());
}

bool recv_msg(int fd, std::string* m) {
  uint64_t n = 0;
  if (!read_all(fd, reinterpret_cast<char*>(&n), sizeof n)) return false;
  if (n > (uint64_t{1} << 40)) return false;
  m->resize(n);
  return read_all(fd, m->data(), n);
}

// A message: 8-byte header length, JSON header, raw floats.
std::string pack(const Json& header, std::span<const float> floats = {}) {
  const std::string h = header.dump();
  const uint64_t n = h.size();
  std::string m(reinterpret_cast<const char*>(&n), sizeof n);
  m += h;
  m.append(reinterpret_cast<const char*>(floats.data()), floats.size_bytes());
  return m;
}

Status unpack(const std::string& m, Json* header, std::span<const float>* floats) {
  uint64_t n = 0;
  if (m.size() < sizeof n) return Status::data_loss("Python worker message shorter than its header");
  std::memcpy(&n, m.data(), sizeof n);
  if (n > m.size() - sizeof n || (m.size() - sizeof n - n) % sizeof(float) != 0) {
    return Status::data_loss("Python worker message with a bad length");
  }
  *header = Json::parse(m.substr(sizeof n, n), nullptr, /*allow_exceptions=*/false);
  if (header->is_discarded()) return Status::data_loss("Python worker message header is not JSON");
  *floats = {reinterpret_cast<const float*>(m.data() + sizeof n + n), (m.size() - sizeof n - n) / sizeof(float)};
  return Status();
}

// ---- what travels ----------------------------------------------------------------------------

Json training_json(const TrainConfig& t) {
  return {{"optimizer", t.optimizer}, {"lr", t.lr}, {"momentum", t.momentum},
          {"weight_decay", t.weight_decay}, {"adam_beta1", t.adam_beta1},
          {"adam_beta2", t.adam_beta2}, {"adam_eps", t.adam_eps}, {"batch_size", t.batch_size},
          {"local_steps", t.local_steps}, {"local_epochs", t.local_epochs}};
}

TrainConfig training_of(const Json& j) {
  TrainConfig t;
  t.optimizer = j.at("optimizer").get<std::string>();
  t.lr = j.at("lr").get<double>();
  t.momentum = j.at("momentum").get<double>();
  t.weight_decay = j.at("weight_decay").get<double>();
  t.adam_beta1 = j.at("adam_beta1").get<double>();
  t.adam_beta2 = j.at("adam_beta2").get<double>();
  t.adam_eps = j.at("adam_eps").get<double>();
  t.batch_size = j.at("batch_size").get<int64_t>();
  t.local_steps = j.at("local_steps").get<int64_t>();
  t.local_epochs = j.at("local_epochs").get<double>();
  return t;
}

Json layout_json(const ArrayLayout& l) {
  Json a = Json::array();
  for (const ArraySpec& s : l.specs()) a.push_back({{"name", s.name}, {"shape", s.shape}});
  return a;
}

Result<std::shared_ptr<const ArrayLayout>> layout_of(const Json& j) {
  std::vector<ArraySpec> specs;
  for (const Json& s : j) {
    specs.push_back(ArraySpec{.name = s.at("name").get<std::string>(),
                              .shape = s.at("shape").get<std::vector<int64_t>>()});
  }
  return ArrayLayout::create(std::move(specs));
}

// A record of `layout` holding `floats` (DataLoss naming `what` for another size).
Result<ArrayRecord> record_of(std::shared_ptr<const ArrayLayout> layout,
                              std::span<const float> floats, const char* what) {
  ArrayRecord rec(std::move(layout));
  if (static_cast<int64_t>(floats.size()) != rec.numel()) {
    return Status::data_loss(std::string(what) + " of the wrong size: " +
                             std::to_string(floats.size()) + " values for " +
                             std::to_string(rec.numel()));
  }
  std::copy(floats.begin(), floats.end(), rec.data());
  return rec;
}

Json status_json(const Status& s) {
  return {{"code", static_cast<int>(s.code())}, {"message", s.message()}};
}

Status status_of(const Json& j) {
  return Status(static_cast<StatusCode>(j.at("code").get<int>()), j.at("message").get<std::string>());
}

// ---- the child -------------------------------------------------------------------------------

std::string serve_one(Trainer& t, PyClients& clients, const std::string& m) {
  Json h;
  std::span<const float> floats;
  if (Status s = unpack(m, &h, &floats); !s.ok()) return pack({{"status", status_json(s)}});
  try {
    const std::string op = h.at("op").get<std::string>();
    Shard shard{h.at("which").get<int>() == 1 ? clients.test_data() : clients.train_data(),
                h.at("indices").get<std::vector<int64_t>>()};
    if (op == "init") {
      Result<ArrayRecord> r = t.init_params(h.at("seed").get<uint64_t>());
      if (!r.ok()) return pack({{"status", status_json(r.error())}});
      return pack({{"status", status_json(Status())},
                   {"layout", layout_json(*r->layout())},
                   {"named", clients.named}},
                  r->flat());
    }
    std::shared_ptr<const ArrayLayout> layout;
    {
      Result<std::shared_ptr<const ArrayLayout>> l = layout_of(h.at("layout"));
      if (!l.ok()) return pack({{"status", status_json(l.error())}});
      layout = *l;
    }
    clients.named = h.at("named").get<bool>();
    clients.layout = layout;
    Result<ArrayRecord> got = record_of(layout, floats, "parameters");
    if (!got.ok()) return pack({{"status", status_json(got.error())}});
    ArrayRecord params = std::move(*got);
    if (op == "fit") {
      Result<TrainResult> r = t.train(params, shard, h.at("steps").get<int64_t>(),
                                      training_of(h.at("training")), config_record_from_json(h.at("task_config")),
                                      h.at("seed").get<uint64_t>(), nullptr);
      if (!r.ok()) return pack({{"status", status_json(r.error())}});
      Json metrics = Json::object();
      for (const auto& [k, v] : r->metrics) metrics[k] = v;
      return pack({{"status", status_json(Status())},
                   {"num_examples", r->num_examples},
                   {"steps", r->steps},
                   {"metrics", metrics}},
                  r->params.flat());
    }
    if (op == "evaluate") {
      Result<EvalResult> r = t.evaluate(params, shard);
      if (!r.ok()) return pack({{"status", status_json(r.error())}});
      return pack({{"status", status_json(Status())},
                   {"loss", r->loss},
                   {"accuracy", r->accuracy},
                   {"num_examples", r->num_examples}});
    }
    return pack({{"status", status_json(Status::invalid_argument("unknown op " + op))}});
  } catch (const std::exception& e) {
    return pack({{"status", status_json(Status::internal(std::string("Python worker: ") + e.what()))}});
  }
}

[[noreturn]] void serve(std::shared_ptr<PyClients> clients, std::shared_ptr<const Shard> test,
                        int in, int out) {
  {
    std::unique_ptr<Trainer> t = make_python_trainer(clients, test);
    std::string m;
    while (recv_msg(in, &m)) {
      if (!send_msg(out, serve_one(*t, *clients, m))) break;
    }
    PyRun_SimpleString("import sys\nsys.stdout.flush()\nsys.stderr.flush()\n");
  }
  _exit(0);
}

// ---- the parent's trainer --------------------------------------------------------------------

class ProcTrainer final : public Trainer {
 public:
  ProcTrainer(std::shared_ptr<PyWorkers> w, std::shared_ptr<PyClients> c, size_t worker)
      : w_(std::move(w)), c_(std::move(c)), worker_(worker) {}

  Result<ArrayRecord> init_params(uint64_t seed) override {
    Json h = {{"op", "init"}, {"which", 1}, {"seed", seed}, {"indices", all_test()}};
    COHORT_ASSIGN_OR_RETURN(std::string reply, w_->call(worker_, pack(h)));
    Json r;
    std::span<const float> floats;
    COHORT_RETURN_IF_ERROR(reply_of(reply, &r, &floats));
    COHORT_ASSIGN_OR_RETURN(std::shared_ptr<const ArrayLayout> layout, layout_of(r.at("layout")));
    COHORT_ASSIGN_OR_RETURN(ArrayRecord rec, record_of(layout, floats, "initial model"));
    w_->named = r.at("named").get<bool>();
    return rec;
  }

  Result<TrainResult> train(const ArrayRecord& start, const Shard& shard, int64_t steps,
                            const TrainConfig& config, const ConfigRecord& task_config,
                            uint64_t seed, const ArrayRecord* grad_correction) override {
    COHORT_RETURN_IF_ERROR(check_python_task(grad_correction));
    size_t w = 0;
    COHORT_ASSIGN_OR_RETURN(Json h, request("fit", start, shard, &w));
    h["steps"] = steps;
    h["seed"] = seed;
    h["training"] = training_json(config);
    h["task_config"] = to_json(task_config);
    COHORT_ASSIGN_OR_RETURN(std::string reply, w_->call(w, pack(h, start.flat())));
    Json r;
    std::span<const float> floats;
    COHORT_RETURN_IF_ERROR(reply_of(reply, &r, &floats));
    TrainResult t;
    COHORT_ASSIGN_OR_RETURN(t.params, record_of(start.layout(), floats, "fit() result"));
    t.num_examples = r.at("num_examples").get<int64_t>();
    t.steps = r.at("steps").get<int64_t>();
    for (auto it = r.at("metrics").begin(); it != r.at("metrics").end(); ++it) t.metrics[it.key()] = it.value().get<double>();
    return t;
  }

  Result<EvalResult> evaluate(const ArrayRecord& params, const Shard& shard) override {
    size_t w = 0;
    COHORT_ASSIGN_OR_RETURN(Json h, request("evaluate", params, shard, &w));
    COHORT_ASSIGN_OR_RETURN(std::string reply, w_->call(w, pack(h, params.flat())));
    Json r;
    std::span<const float> floats;
    COHORT_RETURN_IF_ERROR(reply_of(reply, &r, &floats));
    EvalResult e;
    e.loss = r.at("loss").get<double>();
    e.accuracy = r.at("accuracy").get<double>();
    e.num_examples = r.at("num_examples").get<int64_t>();
    return e;
  }

 private:
  std::vector<int64_t> all_test() const {
    std::vector<int64_t> idx(static_cast<size_t>(c_->test_data()->size()));
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(i);
    return idx;
  }

  // The header of a fit/evaluate request, and this trainer's worker.
  Result<Json> request(const char* op, const ArrayRecord& params, const Shard& shard, size_t* w) {
    int which = 0;
    if (shard.data == c_->test_data()) which = 1;
    else if (shard.data != c_->train_data()) return Status::internal("a shard of an unknown dataset");
    *w = worker_;
    return Json{{"op", op}, {"which", which}, {"indices", shard.indices},
                {"layout", layout_json(*params.layout())}, {"named", w_->named.load()}};
  }

  static Status reply_of(const std::string& m, Json* r, std::span<const float>* floats) {
    COHORT_RETURN_IF_ERROR(unpack(m, r, floats));
    return status_of(r->at("status"));
  }

  std::shared_ptr<PyWorkers> w_;
  std::shared_ptr<PyClients> c_;
  size_t worker_;  // this trainer's process: the simulator keeps one trainer per thread
};

}  // namespace

Result<std::shared_ptr<PyWorkers>> PyWorkers::start(std::shared_ptr<PyClients> clients,
                                                    std::shared_ptr<const Shard> test, int n) {
  auto self = std::shared_ptr<PyWorkers>(new PyWorkers());
  // Whatever Python holds unwritten would otherwise be written by every child as well.
  PyRun_SimpleString("import sys\nsys.stdout.flush()\nsys.stderr.flush()\n");
  for (int i = 0; i < n; ++i) {
    int to[2], from[2];
    if (pipe2(to, O_CLOEXEC) != 0) return Status::internal(std::string("pipe: ") + std::strerror(errno));
    if (pipe2(from, O_CLOEXEC) != 0) {
      close(to[0]);
      close(to[1]);
      return Status::internal(std::string("pipe: ") + std::strerror(errno));
    }
    PyOS_BeforeFork();
    const pid_t pid = fork();
    if (pid == 0) {
      PyOS_AfterFork_Child();
      // Ctrl-C reaches the whole process group: the parent stops the run, its workers wait to
      // be told (end of file) rather than die in the middle of a task.
      signal(SIGINT, SIG_IGN);
      // Only this worker's ends stay open, so every worker sees end-of-file when the parent
      // closes its pipes.
      for (const auto& w : self->workers_) {
        close(w->to);
        close(w->from);
      }
      close(to[1]);
      close(from[0]);
      serve(clients, test, to[0], from[1]);
    }
    PyOS_AfterFork_Parent();
    close(to[0]);
    close(from[1]);
    if (pid < 0) {
      close(to[1]);
      close(from[0]);
      return Status::internal(std::string("fork: ") + std::strerror(errno));
    }
    auto w = std::make_unique<Worker>();
    w->pid = pid;
    w->to = to[1];
    w->from = from[0];
    self->workers_.push_back(std::move(w));
  }
  return self;
}

PyWorkers::~PyWorkers() {
  for (auto& w : workers_) {
    close(w->to);
    close(w->from);
  }
  for (auto& w : workers_) {
    int status = 0;
    while (w->pid > 0 && waitpid(w->pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

Result<std::string> PyWorkers::call(size_t i, const std::string& request) {
  Worker& w = *workers_.at(i);
  std::lock_guard<std::mutex> lk(w.mu);
  if (!w.dead.empty()) return Status::internal(w.dead);
  std::string reply;
  if (send_msg(w.to, request) && recv_msg(w.from, &reply)) return reply;
  int status = 0;
  std::string how = "closed its pipe";
  if (waitpid(w.pid, &status, 0) == w.pid) {
    if (WIFSIGNALED(status)) how = std::string("was killed by signal ") + strsignal(WTERMSIG(status));
    else if (WIFEXITED(status)) how = "exited with status " + std::to_string(WEXITSTATUS(status));
  }
  w.dead = "Python worker process " + std::to_string(i) + " (pid " + std::to_string(w.pid) + ") " + how;
  w.pid = -1;
  return Status::internal(w.dead);
}

TrainerFactory process_trainer_factory(std::shared_ptr<PyWorkers> workers,
                                       std::shared_ptr<PyClients> clients) {
  auto next = std::make_shared<std::atomic<size_t>>(0);
  return [workers, clients, next]() -> Result<std::unique_ptr<Trainer>> {
    const size_t w = next->fetch_add(1) % workers->size();
    return std::unique_ptr<Trainer>(std::make_unique<ProcTrainer>(workers, clients, w));
  };
}

}  // namespace cohort::python
