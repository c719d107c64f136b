#include "runtimes/docker/tar.hpp"

#include <cstdio>
#include <cstring>

namespace osb::runtimes::docker {

namespace {

void put_octal(char* field, size_t width, unsigned long long value) {
  // width includes the terminating NUL.
  std::snprintf(field, width, "%0*llo", static_cast<int>(width - 1), value);
}

} // namespace

std::string make_tar(const std::vector<tar_entry>& entries) {
  std::string out;
  for (auto& e : entries) {
    char header[512];
    std::memset(header, 0, sizeof(header));
    auto name = e.path;
    if (e.directory && (name.empty() || name.back() != '/'))
      name += '/';
    std::strncpy(header, name.c_str(), 99);
    put_octal(header + 100, 8, e.mode);
    put_octal(header + 108, 8, 0); // uid
    put_octal(header + 116, 8, 0); // gid
    put_octal(header + 124, 12, e.directory ? 0 : e.content.size());
    put_octal(header + 136, 12, 0); // mtime
    header[156] = e.directory ? '5' : '0';
    std::memcpy(header + 257, "ustar", 6);
    std::memcpy(header + 263, "00", 2);
    // The checksum is computed with its own field set to spaces.
    std::memset(header + 148, ' ', 8);
    unsigned sum = 0;
    for (auto c : header)
      sum += static_cast<unsigned char>(c);
    std::snprintf(header + 148, 8, "%06o", sum);
    header[155] = ' ';
    out.append(header, sizeof(header));
    if (!e.directory) {
      out += e.content;
      out.append((512 - e.content.size() % 512) % 512, '\0');
    }
  }
  out.append(1024, '\0');
  return out;
}

} // namespace osb::runtimes::docker
