#include "cohort/deploy/deploy_config.h"

#include <cstdlib>

#include <algorithm>

#include "cohort/core/validate.h"

namespace cohort {

double DeployConfig::heartbeat_s() const {
  return heartbeat_interval_s > 0 ? heartbeat_interval_s : std::max(0.1, client_timeout_s / 5);
}

Status DeployConfig::validate() const {
  if (listen_address.empty() || listen_address.rfind(':') == std::string::npos) {
    return field_error("deploy.listen", "expected HOST:PORT, got '" + listen_address + "'");
  }
  if (insecure && (!tls_cert_file.empty() || !tls_key_file.empty())) {
    return Status::invalid_argument(
        "deploy: --insecure (deploy.insecure) together with a TLS certificate or key: choose one");
  }
  if (!insecure && (tls_cert_file.empty() || tls_key_file.empty())) {
    return Status::invalid_argument(
        "deploy: TLS needs a certificate and a key (--cert FILE --key FILE, or deploy.cert and "
        "deploy.key); pass --insecure (deploy.insecure: true) to serve without TLS");
  }
  COHORT_RETURN_IF_ERROR(check_field("deploy.max_wall_s", max_wall_s, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(
      check_field("deploy.keep_checkpoints", keep_checkpoints, Range::at_least(1)));
  if (resume && checkpoint_dir.empty()) {
    return Status::invalid_argument(
        "deploy: --resume needs --checkpoint-dir (deploy.checkpoint_dir)");
  }
  COHORT_RETURN_IF_ERROR(check_field("deploy.client_timeout_s", client_timeout_s, Range::above(0)));
  COHORT_RETURN_IF_ERROR(
      check_field("deploy.heartbeat_interval_s", heartbeat_interval_s, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(check_field("deploy.task_timeout_s", task_timeout_s, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(
      check_field("deploy.max_concurrent_pushes", max_concurrent_pushes, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(check_field("deploy.chunk_bytes", chunk_bytes, Range::at_least(1)));
  COHORT_RETURN_IF_ERROR(check_field("deploy.pull_wait_s", pull_wait_s, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(check_field("deploy.done_grace_s", done_grace_s, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(
      check_field("deploy.stream_idle_timeout_s", stream_idle_timeout_s, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(check_field("deploy.stream_max_s", stream_max_s, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(
      check_field("deploy.stream_min_bytes_per_s", stream_min_bytes_per_s, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(check_field("deploy.stream_grace_s", stream_grace_s, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(
      check_field("deploy.max_streams_per_client", max_streams_per_client, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(check_field("deploy.max_calls_per_s", max_calls_per_s, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(
      check_field("deploy.spool_memory_bytes", spool_memory_bytes, Range::at_least(0)));
  return check_field("deploy.max_upload_bytes", max_upload_bytes, Range::at_least(0));
}

std::string DeployConfig::resolved_spool_dir() const {
  if (!spool_dir.empty()) return spool_dir;
  if (!checkpoint_dir.empty()) return checkpoint_dir;
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
}

}  // namespace cohort
