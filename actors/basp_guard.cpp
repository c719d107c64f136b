#include "actors/basp_guard.hpp"

#include <caf/actor_control_block.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/deserializer.hpp>
#include <caf/error.hpp>
#include <caf/execution_unit.hpp>
#include <caf/message.hpp>
#include <caf/node_id.hpp>
#include <caf/proxy_registry.hpp>
#include <caf/sec.hpp>

namespace osb {

namespace {

using caf::io::basp::message_type;

/// CAF builtins that cross the cluster: atoms, strings and numbers of our
/// requests, errors of failed requests, actor handles, and what CAF's
/// SpawnServ and monitoring send. Left out on purpose: byte buffers,
/// config values, nested messages, groups and stream messages, which the
/// cluster never sends and which deserialize with side effects or without
/// bounds.
constexpr const char* builtin_types[] = {
  "@atom", "@str",  "@strvec", "@strmap", "@strset",   "@i8",
  "@i16",  "@i32",  "@i64",    "@u8",     "@u16",      "@u32",
  "@u64",  "bool",  "double",  "float",   "@unit",     "@error",
  "@actor", "@addr", "@strong_actor_ptr", "@node", "@down", "@exit",
  "@timespan", "@timestamp", "@duration",
};

/// An execution unit for deserializing a payload once without touching
/// the node: actor handles of other nodes resolve to nothing instead of
/// proxies.
class scratch_unit : public caf::execution_unit,
                     private caf::proxy_registry::backend {
public:
  explicit scratch_unit(caf::actor_system& sys)
    : caf::execution_unit(&sys), registry_(sys, *this) {
    proxy_registry_ptr(&registry_);
  }

  void exec_later(caf::resumable*) override {
    // nop
  }

private:
  caf::strong_actor_ptr make_proxy(caf::node_id, caf::actor_id) override {
    return nullptr;
  }

  void set_last_hop(caf::node_id*) override {
    // nop
  }

  caf::proxy_registry registry_;
};

/// CAF's binary deserializer with bounds: a sequence may not announce more
/// elements than bytes are left, nesting is limited, and messages may only
/// carry the policy's types. `why()` says what was refused.
class checked_source : public caf::deserializer {
public:
  checked_source(caf::execution_unit* ctx, const std::vector<char>& buf,
                 const basp_policy& policy)
    : caf::deserializer(ctx), inner_(ctx, buf), policy_(policy) {
    // nop
  }

  const std::string& why() const {
    return why_;
  }

  caf::error begin_object(uint16_t& nr, std::string& name) override {
    if (auto err = inner_.begin_object(nr, name))
      return err;
    if (auto err = enter())
      return err;
    // Only message::load calls this: name is "@<>+type1+type2...".
    size_t pos = name.find('+');
    while (pos != std::string::npos) {
      auto next = name.find('+', pos + 1);
      auto type = name.substr(pos + 1, next == std::string::npos
                                         ? std::string::npos
                                         : next - pos - 1);
      if (policy_.types.count(type) == 0)
        return refuse("a message carries the type '" + type
                      + "', which the cluster protocol does not use");
      pos = next;
    }
    return caf::none;
  }

  caf::error end_object() override {
    --depth_;
    return inner_.end_object();
  }

  caf::error begin_sequence(size_t& num) override {
    if (auto err = inner_.begin_sequence(num))
      return err;
    // Every element takes at least one byte on the wire; CAF would resize
    // a byte vector to `num` before looking at what is left.
    if (num > inner_.remaining())
      return refuse("a length prefix of " + std::to_string(num)
                    + " exceeds the " + std::to_string(inner_.remaining())
                    + " bytes left in the message");
    return enter();
  }

  caf::error end_sequence() override {
    --depth_;
    return inner_.end_sequence();
  }

  caf::error apply_raw(size_t num_bytes, void* data) override {
    return inner_.apply_raw(num_bytes, data);
  }

protected:
  caf::error apply_impl(int8_t& x) override {
    return inner_.apply(x);
  }
  caf::error apply_impl(uint8_t& x) override {
    return inner_.apply(x);
  }
  caf::error apply_impl(int16_t& x) override {
    return inner_.apply(x);
  }
  caf::error apply_impl(uint16_t& x) override {
    return inner_.apply(x);
  }
  caf::error apply_impl(int32_t& x) override {
    return inner_.apply(x);
  }
  caf::error apply_impl(uint32_t& x) override {
    return inner_.apply(x);
  }
  caf::error apply_impl(int64_t& x) override {
    return inner_.apply(x);
  }
  caf::error apply_impl(uint64_t& x) override {
    return inner_.apply(x);
  }
  caf::error apply_impl(float& x) override {
    return inner_.apply(x);
  }
  caf::error apply_impl(double& x) override {
    return inner_.apply(x);
  }
  caf::error apply_impl(long double& x) override {
    return inner_.apply(x);
  }
  caf::error apply_impl(std::string& x) override {
    return inner_.apply(x);
  }
  caf::error apply_impl(std::u16string& x) override {
    return inner_.apply(x);
  }
  caf::error apply_impl(std::u32string& x) override {
    return inner_.apply(x);
  }

private:
  caf::error enter() {
    if (++depth_ > policy_.max_depth)
      return refuse("the message nests deeper than "
                    + std::to_string(policy_.max_depth) + " levels");
    return caf::none;
  }

  caf::error refuse(std::string why) {
    if (why_.empty())
      why_ = std::move(why);
    return caf::sec::invalid_argument;
  }

  caf::binary_deserializer inner_;
  const basp_policy& policy_;
  int depth_ = 0;
  std::string why_;
};

const char* op_name(message_type x) {
  switch (x) {
    case message_type::server_handshake:
      return "server handshake";
    case message_type::client_handshake:
      return "client handshake";
    case message_type::direct_message:
      return "direct message";
    case message_type::routed_message:
      return "routed message";
    case message_type::monitor_message:
      return "monitor message";
    case message_type::down_message:
      return "down message";
    case message_type::heartbeat:
      return "heartbeat";
    default:
      return "unknown message";
  }
}

} // namespace

std::shared_ptr<const basp_policy>
basp_policy::make(caf::actor_system& sys, uint32_t max_payload) {
  auto result = std::make_shared<basp_policy>();
  result->max_payload = max_payload;
  for (auto x : builtin_types)
    result->types.emplace(x);
  for (auto& kvp : sys.config().value_factories_by_name)
    if (kvp.first.compare(0, 7, "stream<") != 0)
      result->types.insert(kvp.first);
  return result;
}

basp_guard::basp_guard(caf::actor_system& sys,
                       std::shared_ptr<const basp_policy> policy,
                       bool accepted)
  : sys_(sys), policy_(std::move(policy)), accepted_(accepted) {
  // nop
}

std::string basp_guard::on_header(const std::vector<char>& bytes) {
  caf::binary_deserializer source{sys_, bytes};
  if (source(hdr_) || !caf::io::basp::valid(hdr_))
    return "malformed BASP header";
  if (hdr_.payload_len > policy_->max_payload)
    return std::string{op_name(hdr_.operation)} + " of "
           + std::to_string(hdr_.payload_len)
           + " bytes exceeds the bound of "
           + std::to_string(policy_->max_payload) + " bytes";
  if (!handshaken_) {
    auto first = accepted_ ? message_type::client_handshake
                           : message_type::server_handshake;
    if (hdr_.operation != first)
      return std::string{op_name(hdr_.operation)} + " before the "
             + op_name(first);
    handshaken_ = true;
  }
  awaiting_payload_ = hdr_.payload_len > 0;
  return {};
}

std::string basp_guard::on_payload(const std::vector<char>& bytes) {
  awaiting_payload_ = false;
  if (bytes.size() != hdr_.payload_len)
    return "payload of " + std::to_string(bytes.size())
           + " bytes, announced " + std::to_string(hdr_.payload_len);
  scratch_unit ctx{sys_};
  checked_source source{&ctx, bytes, *policy_};
  caf::error err;
  switch (hdr_.operation) {
    case message_type::server_handshake: {
      caf::node_id nid;
      std::vector<std::string> app_ids;
      caf::actor_id aid = 0;
      std::set<std::string> sigs;
      err = source(nid, app_ids, aid, sigs);
      break;
    }
    case message_type::client_handshake: {
      caf::node_id nid;
      err = source(nid);
      break;
    }
    case message_type::routed_message: {
      caf::node_id src;
      caf::node_id dst;
      std::vector<caf::strong_actor_ptr> stages;
      caf::message msg;
      err = source(src, dst, stages, msg);
      break;
    }
    case message_type::direct_message: {
      std::vector<caf::strong_actor_ptr> stages;
      caf::message msg;
      err = source(stages, msg);
      break;
    }
    case message_type::monitor_message: {
      caf::node_id src;
      caf::node_id dst;
      err = source(src, dst);
      break;
    }
    case message_type::down_message: {
      caf::node_id src;
      caf::node_id dst;
      caf::error reason;
      err = source(src, dst, reason);
      break;
    }
    default:
      return std::string{op_name(hdr_.operation)} + " with a payload";
  }
  if (!source.why().empty())
    return std::string{op_name(hdr_.operation)} + ": " + source.why();
  if (err)
    return std::string{op_name(hdr_.operation)}
           + " does not deserialize: " + sys_.render(err);
  return {};
}

} // namespace osb
