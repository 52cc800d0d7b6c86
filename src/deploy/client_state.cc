#include "deploy/client_state.h"

#include <algorithm>

#include "cohort/runtime/checkpoint.h"

namespace cohort::deploy {

std::string ClientKeptState::describe() const {
  std::string out;
  auto add = [&](bool held, const char* what) {
    if (!held) return;
    if (!out.empty()) out += ", ";
    out += what;
  };
  add(!ef_residual.empty(), "error-feedback residual");
  add(!client_state.empty(), "c_i");
  add(!optimizer_state.empty(), "optimizer state");
  add(!kept_model.empty(), "kept model");
  return out;
}

Result<ClientKeptState> load_client_state(const std::string& dir, ClientId id,
                                          const std::shared_ptr<const ArrayLayout>& layout) {
  const std::string path = dir + "/" + kCheckpointFile;
  Result<Checkpoint> c = read_checkpoint_file(path);
  if (!c.ok()) {
    if (c.error().code() == StatusCode::kNotFound) return c.error();
    return Status::data_loss("client state " + path + " is unreadable: " + c.error().to_string());
  }
  const int64_t saved = c->runtime.value("client_id", int64_t{-1});
  if (c->strategy != "client-state" || saved != id) {
    return Status::invalid_argument("--state-dir " + dir + " holds the state of " +
                                    (c->strategy == "client-state"
                                         ? "client " + std::to_string(saved)
                                         : "something else (" + c->strategy + ")") +
                                    ", this is client " + std::to_string(id));
  }
  ClientKeptState s;
  for (auto& [name, rec] : c->state.arrays) {
    if (name == "ef_residual") {
      if (!rec.layout()->same_as(*layout)) {
        return Status::invalid_argument("--state-dir " + dir + ": the saved residual has layout " +
                                        rec.layout()->describe() + ", the model " +
                                        layout->describe());
      }
      s.ef_residual.assign(rec.flat().begin(), rec.flat().end());
    } else if (name == "client_state") {
      s.client_state = std::move(rec);
    } else if (name == "optimizer_state") {
      s.optimizer_state = std::move(rec);
    } else if (name == "kept_local") {
      s.kept_model.local = std::move(rec);
    } else if (name == "kept_anchor") {
      s.kept_model.anchor = std::move(rec);
    }
  }
  s.kept_model.round = c->runtime.value("kept_round", int64_t{-1});
  if (s.kept_model.local.empty() != s.kept_model.anchor.empty()) {
    return Status::data_loss("--state-dir " + dir + ": the kept model lacks its " +
                             (s.kept_model.local.empty() ? "local" : "anchor") + " part");
  }
  return s;
}

Status save_client_state(const std::string& dir, ClientId id,
                         const std::shared_ptr<const ArrayLayout>& layout,
                         const ClientKeptState& s) {
  if (dir.empty() || s.empty()) return Status();
  Checkpoint c;
  c.strategy = "client-state";
  c.runtime = {{"client_id", id}};
  if (!s.ef_residual.empty()) {
    ArrayRecord r(layout);
    std::copy(s.ef_residual.begin(), s.ef_residual.end(), r.data());
    c.state.arrays.emplace("ef_residual", std::move(r));
  }
  if (!s.client_state.empty()) c.state.arrays.emplace("client_state", s.client_state.clone());
  if (!s.optimizer_state.empty()) {
    c.state.arrays.emplace("optimizer_state", s.optimizer_state.clone());
  }
  if (!s.kept_model.empty()) {
    c.state.arrays.emplace("kept_local", s.kept_model.local.clone());
    c.state.arrays.emplace("kept_anchor", s.kept_model.anchor.clone());
    c.runtime["kept_round"] = s.kept_model.round;
  }
  return write_checkpoint(dir, c, 1);
}

}  // namespace cohort::deploy
