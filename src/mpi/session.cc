#include <cstdlib>

#include "cohort/core/format.h"
#include "cohort/core/hash.h"
#include "cohort/mpi/mpi.h"
#include "mpi/transport.h"

namespace cohort::mpi {

Status mpi_status(int rc, const std::string& what) {
  if (rc == MPI_SUCCESS) return Status();
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) len = 0;
  return Status::internal(
      "MPI: " + what + ": " +
      (len > 0 ? std::string(text, static_cast<size_t>(len)) : "error " + std::to_string(rc)));
}

Status send_bytes(int dest, int tag, const std::string& bytes) {
  return mpi_status(
      MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, dest, tag, MPI_COMM_WORLD),
      "sending to rank " + std::to_string(dest));
}

Result<std::optional<Incoming>> poll(int source) {
  int flag = 0;
  MPI_Status st;
  COHORT_RETURN_IF_ERROR(
      mpi_status(MPI_Iprobe(source, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st), "probing"));
  if (!flag) return std::optional<Incoming>();
  int count = 0;
  COHORT_RETURN_IF_ERROR(mpi_status(MPI_Get_count(&st, MPI_BYTE, &count), "message size"));
  Incoming in;
  in.source = st.MPI_SOURCE;
  in.tag = st.MPI_TAG;
  in.bytes.resize(static_cast<size_t>(count));
  COHORT_RETURN_IF_ERROR(mpi_status(MPI_Recv(in.bytes.data(), count, MPI_BYTE, in.source, in.tag,
                                             MPI_COMM_WORLD, MPI_STATUS_IGNORE),
                                    "receiving from rank " + std::to_string(in.source)));
  return std::optional<Incoming>(std::move(in));
}

Result<std::unique_ptr<Session>> Session::init() {
  int provided = 0;
  int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
  if (rc != MPI_SUCCESS)
    return Status::internal("MPI_Init_thread failed (error " + std::to_string(rc) + ")");
  std::unique_ptr<Session> s(new Session());
  COHORT_RETURN_IF_ERROR(
      mpi_status(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "error handler"));
  COHORT_RETURN_IF_ERROR(mpi_status(MPI_Comm_rank(MPI_COMM_WORLD, &s->rank_), "rank"));
  COHORT_RETURN_IF_ERROR(mpi_status(MPI_Comm_size(MPI_COMM_WORLD, &s->size_), "size"));
  if (provided < MPI_THREAD_SERIALIZED) {
    return Status::internal("MPI provides thread level " + std::to_string(provided) +
                            ", below MPI_THREAD_SERIALIZED, which rank 0's communication thread "
                            "needs");
  }
  return s;
}

Session::~Session() { MPI_Finalize(); }

void Session::abort(int exit_code) {
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);  // MPI_Abort does not return; this is for the compiler
}

Status MpiOptions::validate() const {
  if (!(timeout_s > 0)) {
    return Status::invalid_argument("--mpi-timeout: must be > 0 seconds, got " +
                                    format_number(timeout_s));
  }
  if (models_per_rank < 1) {
    return Status::invalid_argument("mpi models_per_rank: must be >= 1, got " +
                                    std::to_string(models_per_rank));
  }
  return Status();
}

uint64_t scenario_fingerprint(const std::string& config_json,
                              const std::vector<const Shard*>& shards) {
  uint64_t h = fnv1a64(config_json.data(), config_json.size());
  if (!shards.empty() && shards[0]->data) {
    // The training data itself (a file that differs between hosts): every label and a strided
    // sample of the features.
    const Dataset& d = *shards[0]->data;
    h = fnv1a64(d.labels.data(), d.labels.size() * sizeof(d.labels[0]), h);
    for (size_t i = 0; i < d.features.size(); i += 61)
      h = fnv1a64(&d.features[i], sizeof(float), h);
  }
  for (const Shard* s : shards) {
    const uint64_t n = s->indices.size();
    h = fnv1a64(&n, sizeof n, h);
    h = fnv1a64(s->indices.data(), s->indices.size() * sizeof(s->indices[0]), h);
  }
  return h;
}

}  // namespace cohort::mpi
