// The `operation` label of Docker call durations: resource and action of
// the Engine API path, never an id or an image name.

#include "runtimes/docker/operation_name.hpp"

#include <gtest/gtest.h>

using osb::runtimes::docker::docker_operation;
namespace http = boost::beast::http;

TEST(DockerOperation, NamesResourceAndAction) {
  EXPECT_EQ(docker_operation(http::verb::post,
                             "/v1.41/containers/create?name=sandbox-abc"),
            "containers_create");
  EXPECT_EQ(docker_operation(http::verb::post,
                             "/v1.41/containers/sandbox-abc/start"),
            "containers_start");
  EXPECT_EQ(docker_operation(http::verb::delete_,
                             "/v1.41/containers/sandbox-abc?force=true&v=1"),
            "containers_delete");
  EXPECT_EQ(docker_operation(http::verb::get,
                             "/v1.41/containers/json?all=1&filters=x"),
            "containers_json");
  EXPECT_EQ(docker_operation(http::verb::get, "/v1.41/_ping"), "_ping");
  EXPECT_EQ(docker_operation(http::verb::post,
                             "/v1.41/images/create?fromImage=busybox"),
            "images_create");
}

TEST(DockerOperation, ImageNamesWithSlashesAreNotLabels) {
  EXPECT_EQ(docker_operation(http::verb::get,
                             "/v1.41/images/opensandbox/busybox:latest/json"),
            "images_json");
  EXPECT_EQ(docker_operation(http::verb::delete_,
                             "/v1.41/images/registry:5000/a/b:1"),
            "images_delete");
  EXPECT_EQ(docker_operation(http::verb::get, "/"), "other");
}
