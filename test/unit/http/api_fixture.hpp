#pragma once

// The fixture of the API handler tests (test/unit/http_api*_test.cpp): an
// in-memory lifecycle backend that records what it is asked, and `Api`,
// which calls the handler without a server. One definition for all test
// files, so that gtest sees one fixture class per suite.

#include "http/api.hpp"
#include "test/unit/http/op_backend.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace osb::test {

using namespace osb::http;

inline constexpr const char* api_key = "test-api-key-12345";

/// An in-memory lifecycle backend that answers synchronously and records
/// what it was asked.
class fake_backend : public op_backend {
public:
  std::map<std::string, sandbox_view> sandboxes;
  int num_calls = 0;
  std::string last_id;
  std::string last_request_id;
  sandbox_spec last_spec;
  list_query last_query;
  int64_t last_renew = 0;
  diagnostics_query last_diag;
  /// When set, every call fails with it.
  std::optional<api_error> failure;
  /// What readiness() answers ("" = ready).
  std::string not_ready;

  void readiness(const call_context&, reply<std::string> done) override {
    done(result<std::string>::ok(not_ready));
  }

  void create(const call_context& ctx, sandbox_spec spec,
              reply<sandbox_view> done) override {
    record(ctx, "");
    if (failure)
      return done(result<sandbox_view>::fail(*failure));
    last_spec = spec;
    sandbox_view x;
    x.id = "new-sbx";
    x.image = spec.image;
    x.state = sandbox_state::running;
    sandboxes[x.id] = x;
    done(result<sandbox_view>::ok(x));
  }

  void get(const call_context& ctx, const std::string& id,
           reply<sandbox_view> done) override {
    record(ctx, id);
    if (auto err = lookup(id))
      return done(result<sandbox_view>::fail(*err));
    done(result<sandbox_view>::ok(sandboxes[id]));
  }

  void list(const call_context& ctx, list_query q,
            reply<list_page> done) override {
    record(ctx, "");
    last_query = q;
    std::vector<sandbox_view> xs;
    for (auto& [id, x] : sandboxes)
      xs.push_back(x);
    done(result<list_page>::ok(paginate(std::move(xs), q)));
  }

  void remove(const call_context& ctx, const std::string& id,
              reply<std::string> done) override {
    record(ctx, id);
    if (auto err = lookup(id))
      return done(result<std::string>::fail(*err));
    sandboxes.erase(id);
    done(result<std::string>::ok(pending_removal));
  }

  /// What `remove` answers: "" = removed, else why the cleanup is pending.
  std::string pending_removal;

  void pause(const call_context& ctx, const std::string& id,
             reply<sandbox_view> done) override {
    record(ctx, id);
    if (auto err = lookup(id))
      return done(result<sandbox_view>::fail(*err));
    done(result<sandbox_view>::ok(sandboxes[id]));
  }

  void resume(const call_context& ctx, const std::string& id,
              reply<sandbox_view> done) override {
    record(ctx, id);
    if (auto err = lookup(id))
      return done(result<sandbox_view>::fail(*err));
    done(result<sandbox_view>::ok(sandboxes[id]));
  }

  void renew(const call_context& ctx, const std::string& id,
             int64_t expires_us, reply<int64_t> done) override {
    record(ctx, id);
    last_renew = expires_us;
    if (auto err = lookup(id))
      return done(result<int64_t>::fail(*err));
    done(result<int64_t>::ok(expires_us));
  }

  void patch(const call_context& ctx, const std::string& id, metadata_patch,
             reply<sandbox_view> done) override {
    record(ctx, id);
    if (auto err = lookup(id))
      return done(result<sandbox_view>::fail(*err));
    done(result<sandbox_view>::ok(sandboxes[id]));
  }

  void diagnostics(const call_context& ctx, const std::string& id,
                   diagnostics_query q, reply<std::string> done) override {
    record(ctx, id);
    if (auto err = lookup(id))
      return done(result<std::string>::fail(*err));
    last_diag = q;
    done(result<std::string>::ok(q.kind + " text"));
  }

  std::string last_snapshot_name;
  snapshot_query last_snapshot_query;

  void create_snapshot(const call_context& ctx, const std::string& id,
                       std::string name,
                       reply<snapshot_view> done) override {
    record(ctx, id);
    if (auto err = lookup(id))
      return done(result<snapshot_view>::fail(*err));
    last_snapshot_name = name;
    snapshot_view x;
    x.id = "snap-1";
    x.sandbox_id = id;
    x.name = std::move(name);
    x.state = "Creating";
    x.reason = "snapshot_accepted";
    x.message = "Snapshot creation accepted.";
    x.created_us = 1'700'000'000'000'000;
    x.last_transition_us = x.created_us;
    done(result<snapshot_view>::ok(x));
  }

  void get_snapshot(const call_context& ctx, const std::string& id,
                    reply<snapshot_view> done) override {
    record(ctx, id);
    done(result<snapshot_view>::fail(make_api_error(
      ec::snapshot_not_found, "Snapshot " + id + " not found")));
  }

  void list_snapshots(const call_context& ctx, snapshot_query q,
                      reply<snapshot_page> done) override {
    record(ctx, "");
    last_snapshot_query = q;
    snapshot_page page;
    page.page = q.page;
    page.page_size = q.page_size;
    done(result<snapshot_page>::ok(page));
  }

  void delete_snapshot(const call_context& ctx, const std::string& id,
                       reply<unit> done) override {
    record(ctx, id);
    if (id == "busy")
      return done(result<unit>::fail(make_api_error(
        ec::snapshot_delete_conflict,
        "snapshot image cannot be deleted due to a conflict")));
    done(result<unit>::ok(unit{}));
  }

private:
  void record(const call_context& ctx, const std::string& id) {
    ++num_calls;
    last_id = id;
    last_request_id = ctx.request_id;
  }

  std::optional<api_error> lookup(const std::string& id) {
    if (failure)
      return failure;
    if (sandboxes.count(id) == 0)
      return make_api_error(ec::sandbox_not_found,
                            "Sandbox " + id + " not found.");
    return std::nullopt;
  }
};

inline std::string header_of(const response& res, std::string_view name) {
  for (const auto& [k, v] : res.headers) {
    if (k.size() != name.size())
      continue;
    bool eq = true;
    for (size_t i = 0; i < k.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(k[i]))
          != std::tolower(static_cast<unsigned char>(name[i])))
        eq = false;
    if (eq)
      return v;
  }
  return {};
}

inline bool has_header(const response& res, std::string_view name) {
  for (const auto& [k, v] : res.headers)
    if (k == name)
      return true;
  return false;
}

class Api : public testing::Test {
protected:
  Api() {
    cfg = std::make_shared<node_config>();
    cfg->server.host = "192.168.1.100";
    cfg->server.api_key = api_key;
    cfg->docker.network_mode = "bridge";
    backend = std::make_shared<fake_backend>();
    sandbox_view x;
    x.id = "sbx-001";
    x.image = "python:3.11";
    x.state = sandbox_state::running;
    x.ports.http = 50001;
    x.ports.execd = 40109;
    backend->sandboxes[x.id] = x;
    rebuild();
  }

  void rebuild() {
    api = make_api_handler(cfg, backend);
  }

  /// Sends a request through the handler and returns the response.
  response call(std::string method, std::string target,
                std::vector<std::pair<std::string, std::string>> headers = {},
                std::string body = {}, bool with_key = true) {
    request req;
    req.method = std::move(method);
    req.target = target;
    auto q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos)
      req.query = target.substr(q + 1);
    req.headers = std::move(headers);
    req.headers.emplace_back("host", "testserver");
    if (with_key)
      req.headers.emplace_back("open-sandbox-api-key", api_key);
    req.body = std::move(body);
    std::optional<response> out;
    int num_answers = 0;
    api(std::move(req), [&](response res) {
      ++num_answers;
      out = std::move(res);
    });
    EXPECT_EQ(num_answers, 1);
    return out ? *out : response{};
  }

  response call_nokey(std::string method, std::string target,
                      std::vector<std::pair<std::string, std::string>> hs
                      = {}) {
    return call(std::move(method), std::move(target), std::move(hs), {},
                false);
  }

  std::shared_ptr<node_config> cfg;
  std::shared_ptr<fake_backend> backend;
  handler api;
};

inline const char* missing_key_body
  = R"({"code":"MISSING_API_KEY","message":"Authentication credentials are missing. Provide API key via OPEN-SANDBOX-API-KEY header."})";

} // namespace osb::test
