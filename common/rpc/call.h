// What a service's logic needs to know of the RPC that reached it: who is calling, the key that
// scopes its request_id, and where to record the call in the audit log inside its transaction.
#ifndef SARLOOP_COMMON_RPC_CALL_H_
#define SARLOOP_COMMON_RPC_CALL_H_

#include <string>

#include "common/security/audit.h"
#include "common/security/identity.h"
#include "sarloop/v1/types.pb.h"

namespace sarloop {

struct Call {
  Identity identity;
  // The identity and the user it names, as events record them.
  v1::Actor actor;
  // Method and identity: request_id idempotency is per method and caller.
  std::string scope;
  // May be null (unit tests).
  AuditRecorder* audit = nullptr;
};

}  // namespace sarloop

#endif  // SARLOOP_COMMON_RPC_CALL_H_
