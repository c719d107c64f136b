#pragma once

#include <string>
#include <vector>

namespace osb::runtimes::docker {

/// One member of a tar archive.
struct tar_entry {
  std::string path;    ///< relative, e.g. "opt/opensandbox/execd"
  unsigned mode = 0644;
  bool directory = false;
  std::string content; ///< file bytes; empty for directories
};

/// Builds a POSIX ustar archive (what Docker's archive API accepts).
std::string make_tar(const std::vector<tar_entry>& entries);

} // namespace osb::runtimes::docker
