// Who is calling the deployment server: bearer tokens mapped to client ids (the tokens file),
// and when each client was last heard from (liveness). Internal to cohort_deploy.
//
// Thread safety: TokenTable is immutable after load() and safe to share; Sessions is guarded
// by the server's lock.
#pragma once

#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "cohort/core/status.h"
#include "cohort/core/types.h"

namespace cohort::deploy {

class TokenTable {
 public:
  // Reads and parses the tokens file (parse_tokens in server.h): NotFound / InvalidArgument
  // naming the file and line.
  static Result<TokenTable> load(const std::string& path);
  // The client id of the caller's "authorization: Bearer <token>", or Unauthenticated.
  Result<ClientId> authenticate(const grpc::ServerContextBase& ctx) const;
  // Every client id the file names, ascending, without duplicates.
  std::vector<ClientId> client_ids() const;
  size_t size() const { return tokens_.size(); }

 private:
  std::map<std::string, ClientId> tokens_;
};

// Last contact per client, on the server's steady clock.
class Sessions {
 public:
  void touch(ClientId id, double now) { last_seen_[id] = now; }
  // Heard from within `timeout_s` of `now`.
  bool fresh(ClientId id, double now, double timeout_s) const;

 private:
  std::unordered_map<ClientId, double> last_seen_;
};

}  // namespace cohort::deploy
