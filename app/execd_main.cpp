// opensandbox-execd: the daemon inside every sandbox container.

#include "execd/daemon.hpp"

int main(int argc, char** argv) {
  return osb::execd::execd_main(argc, argv);
}
