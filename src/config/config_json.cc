// to_json(SimulationConfig): the resolved config, every default filled in (DIR/config.json).

#include "cohort/core/config_record_json.h"
#include "cohort/config/config.h"

namespace cohort {
namespace {

Json distribution_json(const sim::Distribution& d) {
  Json j = Json::object();
  j["distribution"] = d.kind;
  j["mean"] = d.mean;
  j["std"] = d.std;
  j["low"] = d.low;
  j["high"] = d.high;
  j["sigma"] = d.sigma;
  j["min"] = d.min;
  j["max"] = d.max;
  return j;
}

}  // namespace

Json to_json(const SimulationConfig& config) {
  const DataConfig& d = config.data;
  Json data = Json::object();
  data["dataset"] = d.dataset;
  data["path"] = d.path;
  data["train_limit"] = d.train_limit;
  data["test_limit"] = d.test_limit;
  data["partition"] = d.partition.kind;
  data["partition_file"] = d.partition.file.empty() ? Json() : Json(d.partition.file);
  data["alpha"] = d.partition.alpha;
  data["shards_per_client"] = d.partition.shards_per_client;
  data["min_size"] = d.partition.min_size;
  data["size_skew"] = d.partition.size_skew;
  data["with_replacement"] = d.partition.with_replacement;
  data["examples_per_client"] = d.partition.examples_per_client;
  data["holdout_fraction"] = d.holdout_fraction;
  Json synthetic = Json::object();
  synthetic["num_examples"] = d.synthetic.num_examples;
  synthetic["test_examples"] = d.synthetic_test_examples;
  synthetic["dim"] = d.synthetic.dim;
  synthetic["classes"] = d.synthetic.num_classes;
  synthetic["separation"] = d.synthetic.separation;
  synthetic["noise"] = d.synthetic.noise;
  data["synthetic"] = std::move(synthetic);
  if (d.dataset == "text") {
    data["text"] = {{"seq_len", d.text.seq_len},
                    {"stride", d.text.stride},
                    {"val_fraction", d.text.val_fraction},
                    {"min_chars", d.text.min_chars}};
  }

  const sim::PopulationOptions& p = config.clients;
  Json clients = Json::object();
  clients["count"] = p.num_clients;
  clients["speed"] = distribution_json(p.speed);
  clients["up_mbps"] = distribution_json(p.up_mbps);
  clients["down_mbps"] = distribution_json(p.down_mbps);
  clients["latency_ms"] = distribution_json(p.latency_ms);
  clients["trace"] = p.trace.empty() ? Json(nullptr) : Json(p.trace);
  clients["jitter"] = p.dynamics.jitter;
  clients["dropout"] = p.dynamics.dropout;
  clients["task_timeout_factor"] = p.dynamics.task_timeout_factor;
  Json availability = Json::object();
  availability["mean_online_s"] = p.dynamics.availability.mean_online_s;
  availability["mean_offline_s"] = p.dynamics.availability.mean_offline_s;
  availability["distribution"] = p.dynamics.availability.distribution;
  clients["availability"] = std::move(availability);

  Json model = Json::object();
  model["name"] = config.model.name;
  model["hidden"] = config.model.hidden;
  if (!config.model.init.empty()) model["init"] = config.model.init;

  const TrainConfig& t = config.training;
  Json training = Json::object();
  training["optimizer"] = t.optimizer;
  training["lr"] = t.lr;
  training["momentum"] = t.momentum;
  training["weight_decay"] = t.weight_decay;
  training["batch_size"] = t.batch_size;
  training["local_epochs"] = t.local_epochs;
  training["local_steps"] = t.local_steps;
  if (t.optimizer == "adamw") {
    training["adam_beta1"] = t.adam_beta1;
    training["adam_beta2"] = t.adam_beta2;
    training["adam_eps"] = t.adam_eps;
  }

  Json strategy = Json::object();
  strategy["name"] = config.strategy.name;
  strategy.update(to_json(config.strategy.params));

  const RunConfig& r = config.run;
  Json run = Json::object();
  run["rounds"] = r.rounds;
  run["max_virtual_time_s"] = r.max_virtual_time_s;
  run["eval_every"] = r.eval_every;
  run["eval_interval_s"] = r.eval_interval_s;
  run["target_accuracy"] = r.target_accuracy;
  run["seed"] = r.seed;
  run["threads"] = r.threads;
  run["reproducible"] = r.reproducible;

  Json j = Json::object();
  j["data"] = std::move(data);
  j["clients"] = std::move(clients);
  j["model"] = std::move(model);
  if (!config.models.empty()) {
    Json models = Json::array();
    for (const ModelEntry& e : config.models) {
      models.push_back({{"label", e.label},
                        {"name", e.model.name},
                        {"hidden", e.model.hidden},
                        {"target_accuracy", e.target_accuracy}});
    }
    j["models"] = std::move(models);
  }
  j["training"] = std::move(training);
  if (config.strategies.empty()) {
    j["strategy"] = std::move(strategy);
  } else {
    Json list = Json::array();
    for (const StrategyConfig& sc : config.strategies) {
      Json item = Json::object();
      item["name"] = sc.name;
      item["label"] = sc.label;
      item.update(to_json(sc.params));
      if (!sc.uplink.empty()) item["uplink"] = sc.uplink;
      if (sc.rounds > 0) item["rounds"] = sc.rounds;
      if (!sc.downlink.empty()) item["downlink"] = sc.downlink;
      if (sc.downlink_delta) item["downlink_delta"] = *sc.downlink_delta;
      if (sc.robust_set) item["robust"] = sc.robust ? to_json(*sc.robust) : Json("none");
      if (sc.privacy_set) {
        item["privacy"] = sc.privacy.enabled() ? to_json(sc.privacy) : Json("none");
      }
      list.push_back(std::move(item));
    }
    j["strategies"] = std::move(list);
  }
  j["run"] = std::move(run);
  const AdmissionOptions& a = config.admission;
  j["admission"] = {{"max_examples_factor", a.max_examples_factor},
                    {"max_examples", a.max_examples},
                    {"norm_policy", a.norm_policy},
                    {"norm_factor", a.norm_factor},
                    {"norm_window", a.norm_window},
                    {"norm_warmup", a.norm_warmup},
                    {"warmup_bound", a.warmup_bound},
                    {"max_norm", a.max_norm},
                    {"max_steps_factor", a.max_steps_factor},
                    {"max_metrics", a.max_metrics},
                    {"max_metric_key_bytes", a.max_metric_key_bytes},
                    {"max_abs_weight", a.max_abs_weight},
                    {"max_model_growth", a.max_model_growth}};
  j["compression"] = {{"uplink", config.compression.uplink},
                      {"downlink", config.compression.downlink},
                      {"downlink_delta", config.compression.downlink_delta},
                      {"downlink_history", config.compression.downlink_history}};
  // Sections that are off by default appear only when on.
  if (config.robust) j["robust"] = to_json(*config.robust);
  if (config.contribution.enabled()) {
    const auto& c = config.contribution;
    j["contribution"] = {{"method", c.options.method},
                         {"evaluations", c.options.evaluations},
                         {"truncation", c.options.truncation},
                         {"utility", c.utility},
                         {"validation_examples", config.contribution_validation_examples}};
  }
  if (config.privacy.enabled()) j["privacy"] = to_json(config.privacy);
  if (config.attack.kind != "none") {
    const attack::AttackOptions& a = config.attack;
    j["attack"] = {{"kind", a.kind},   {"fraction", a.fraction}, {"clients", a.clients},
                   {"start", a.start}, {"scale", a.scale},       {"sigma", a.sigma},
                   {"z", a.z},         {"epsilon", a.epsilon},   {"free_rider", a.free_rider}};
  }
  return j;
}

Json to_json(const RobustOptions& o) {
  const robust::RuleOptions& q = o.rule;
  return {{"rule", q.rule},
          {"f", q.f},
          {"m", q.m},
          {"beta", q.beta},
          {"tau", q.tau},
          {"iterations", q.iterations},
          {"max_iterations", q.max_iterations},
          {"tolerance", q.tolerance},
          {"nu", q.nu},
          {"max_norm", q.max_norm},
          {"flag_r", q.flag_r},
          {"flag_lambda", q.flag_lambda},
          {"flag_iterations", q.flag_iterations},
          {"bucketing", q.bucketing},
          {"client_momentum", o.client_momentum},
          {"trust_rate", o.trust_rate},
          {"trust_threshold", o.trust_threshold}};
}

Json to_json(const DeployConfig& d) {
  return {{"listen", d.listen_address},
          {"tokens", d.tokens_file},
          {"cert", d.tls_cert_file},
          {"key", d.tls_key_file},
          {"insecure", d.insecure},
          {"max_wall_s", d.max_wall_s},
          {"checkpoint_dir", d.checkpoint_dir},
          {"keep_checkpoints", d.keep_checkpoints},
          {"client_timeout_s", d.client_timeout_s},
          {"heartbeat_interval_s", d.heartbeat_interval_s},
          {"task_timeout_s", d.task_timeout_s},
          {"max_concurrent_pushes", d.max_concurrent_pushes},
          {"chunk_bytes", d.chunk_bytes},
          {"pull_wait_s", d.pull_wait_s},
          {"done_grace_s", d.done_grace_s},
          {"server_eval", d.server_eval},
          {"stream_idle_timeout_s", d.stream_idle_timeout_s},
          {"stream_max_s", d.stream_max_s},
          {"stream_min_bytes_per_s", d.stream_min_bytes_per_s},
          {"stream_grace_s", d.stream_grace_s},
          {"max_streams_per_client", d.max_streams_per_client},
          {"max_calls_per_s", d.max_calls_per_s},
          {"max_upload_bytes", d.max_upload_bytes},
          {"spool_dir", d.spool_dir},
          {"spool_memory_bytes", d.spool_memory_bytes}};
}

Json to_json(const runtime::PrivacyOptions& o) {
  const privacy::DpOptions& d = o.dp;
  const runtime::SecAggOptions& s = o.secagg;
  Json p = Json::object();
  if (d.enabled()) {
    p["dp"] = {{"noise_multiplier", d.noise_multiplier},
               {"clip_norm", d.clip_norm},
               {"delta", d.delta},
               {"side", d.side},
               {"adaptive_clipping", d.adaptive_clipping},
               {"target_quantile", d.target_quantile},
               {"clip_learning_rate", d.clip_learning_rate},
               {"clipped_count_stddev", d.clipped_count_stddev},
               {"conversion", d.conversion}};
    if (d.target_epsilon) p["dp"]["target_epsilon"] = *d.target_epsilon;
  }
  if (s.enabled) {
    p["secagg"] = {{"enabled", true},
                   {"threshold", s.threshold},
                   {"neighbours", s.neighbours},
                   {"input_bits", s.input_bits},
                   {"range", s.range},
                   {"bits", s.bits},
                   {"dropout_before_masking", s.dropout_before_masking},
                   {"dropout_after_masking", s.dropout_after_masking},
                   {"stage_timeout_s", s.stage_timeout_s}};
  }
  return p;
}

}  // namespace cohort
