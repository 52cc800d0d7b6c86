#include "deploy/sessions.h"

#include <fstream>
#include <set>
#include <sstream>

#include "cohort/deploy/server.h"
#include "deploy/wire.h"

namespace cohort::deploy {

Result<std::map<std::string, ClientId>> parse_tokens(const std::string& text,
                                                     const std::string& path) {
  std::map<std::string, ClientId> out;
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    const size_t hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    std::istringstream ls(line);
    std::string token, id_str, extra;
    if (!(ls >> token)) continue;
    const std::string where = path + ":" + std::to_string(lineno) + ": ";
    if (!(ls >> id_str) || (ls >> extra)) {
      return Status::invalid_argument(where + "expected \"TOKEN CLIENT_ID\"");
    }
    ClientId id = -1;
    try {
      size_t used = 0;
      id = std::stoll(id_str, &used);
      if (used != id_str.size()) id = -1;
    } catch (const std::exception&) {
      id = -1;
    }
    if (id < 0) {
      return Status::invalid_argument(where + "client id must be a non-negative integer, got \"" +
                                      id_str + "\"");
    }
    if (!out.emplace(token, id).second) {
      return Status::invalid_argument(where + "duplicate token (for client " + id_str + ")");
    }
  }
  if (out.empty()) return Status::invalid_argument(path + ": no tokens");
  return out;
}

Result<TokenTable> TokenTable::load(const std::string& path) {
  if (path.empty()) {
    return Status::invalid_argument("deploy: no tokens file (--tokens FILE or deploy.tokens)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found("tokens file " + path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  TokenTable t;
  COHORT_ASSIGN_OR_RETURN(t.tokens_, parse_tokens(ss.str(), path));
  return t;
}

Result<ClientId> TokenTable::authenticate(const grpc::ServerContextBase& ctx) const {
  COHORT_ASSIGN_OR_RETURN(std::string token, wire::bearer_token(ctx));
  auto t = tokens_.find(token);
  if (t == tokens_.end()) return Status::unauthenticated("unknown or revoked token");
  return t->second;
}

std::vector<ClientId> TokenTable::client_ids() const {
  std::set<ClientId> ids;
  for (const auto& [token, id] : tokens_) ids.insert(id);
  return {ids.begin(), ids.end()};
}

bool Sessions::fresh(ClientId id, double now, double timeout_s) const {
  auto it = last_seen_.find(id);
  return it != last_seen_.end() && now - it->second <= timeout_s;
}

}  // namespace cohort::deploy
