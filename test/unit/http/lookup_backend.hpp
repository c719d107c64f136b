#pragma once

// A lifecycle backend for tests of the API handler: it knows a fixed set of
// sandboxes (get), accepts pauses and answers everything else 501. Tests
// derive from it to record what they look at.

#include <map>
#include <string>

#include "http/api.hpp"
#include "test/unit/http/op_backend.hpp"

namespace osb::test {

using namespace osb::http;

/// A lifecycle backend that knows a fixed set of sandboxes.
class lookup_backend : public op_backend {
public:
  std::map<std::string, sandbox_view> sandboxes;
  int num_gets = 0;

  void get(const call_context&, const std::string& id,
           reply<sandbox_view> done) override {
    ++num_gets;
    auto i = sandboxes.find(id);
    if (i == sandboxes.end())
      return done(result<sandbox_view>::fail(make_api_error(
        ec::sandbox_not_found, "Sandbox " + id + " not found.")));
    done(result<sandbox_view>::ok(i->second));
  }

  template <class T>
  static void unsupported(reply<T>& done) {
    done(result<T>::fail(make_api_error(ec::not_implemented, "no")));
  }

  void create(const call_context&, sandbox_spec,
              reply<sandbox_view> done) override {
    unsupported(done);
  }
  void list(const call_context&, list_query, reply<list_page> done) override {
    unsupported(done);
  }
  void remove(const call_context&, const std::string&,
              reply<std::string> done) override {
    unsupported(done);
  }
  void pause(const call_context&, const std::string& id,
             reply<sandbox_view> done) override {
    auto i = sandboxes.find(id);
    done(result<sandbox_view>::ok(i == sandboxes.end() ? sandbox_view{}
                                                       : i->second));
  }
  void resume(const call_context&, const std::string&,
              reply<sandbox_view> done) override {
    unsupported(done);
  }
  void renew(const call_context&, const std::string&, int64_t,
             reply<int64_t> done) override {
    unsupported(done);
  }
  void patch(const call_context&, const std::string&, metadata_patch,
             reply<sandbox_view> done) override {
    unsupported(done);
  }
};

} // namespace osb::test
