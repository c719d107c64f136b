// A tiny, fast static HTTP/1.1 upstream for bench/proxy_throughput.sh: one
// epoll thread, keep-alive, pipelining, every request answered with the same
// 13-byte body. It is the floor the server proxy is measured against, so it
// must cost as little as possible. Requests with bodies are not supported
// (the benchmark sends GETs).
//
// Build: g++ -O2 -std=c++17 -o proxy_backend bench/proxy_backend.cpp
// Usage: proxy_backend PORT [any]   (listens on 127.0.0.1:PORT, or on all
//        addresses with `any` (inside a sandbox); PORT 0 = any, printed)

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>

namespace {

constexpr char reply[] = "HTTP/1.1 200 OK\r\n"
                         "Content-Type: text/plain\r\n"
                         "Content-Length: 13\r\n"
                         "\r\n"
                         "hello, world\n";
constexpr size_t reply_len = sizeof(reply) - 1;

struct conn {
  std::string in;
};

void close_conn(int ep, int fd, std::unordered_map<int, conn>& conns) {
  epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
  close(fd);
  conns.erase(fd);
}

} // namespace

int main(int argc, char** argv) {
  int port = argc > 1 ? std::atoi(argv[1]) : 0;
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool any = argc > 2 && std::string{argv[2]} == "any";
  addr.sin_addr.s_addr = htonl(any ? INADDR_ANY : INADDR_LOOPBACK);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0
      || listen(lfd, 4096) != 0) {
    std::perror("bind/listen");
    return 1;
  }
  socklen_t len = sizeof(addr);
  getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::printf("%d\n", ntohs(addr.sin_port));
  std::fflush(stdout);
  int ep = epoll_create1(0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  std::unordered_map<int, conn> conns;
  epoll_event events[256];
  char buf[64 * 1024];
  std::string out;
  for (;;) {
    int n = epoll_wait(ep, events, 256, -1);
    if (n < 0 && errno == EINTR)
      continue;
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == lfd) {
        for (;;) {
          int c = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK);
          if (c < 0)
            break;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          epoll_event cev{};
          cev.events = EPOLLIN;
          cev.data.fd = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
          conns[c];
        }
        continue;
      }
      auto& st = conns[fd];
      bool closed = false;
      for (;;) {
        auto r = read(fd, buf, sizeof(buf));
        if (r > 0) {
          st.in.append(buf, static_cast<size_t>(r));
          if (static_cast<size_t>(r) < sizeof(buf))
            break;
          continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
          closed = true;
        break;
      }
      // Answer every complete request in the buffer (pipelining).
      out.clear();
      size_t pos = 0;
      for (;;) {
        auto end = st.in.find("\r\n\r\n", pos);
        if (end == std::string::npos)
          break;
        out.append(reply, reply_len);
        pos = end + 4;
      }
      st.in.erase(0, pos);
      if (!out.empty()) {
        // Small replies into an idle socket buffer: one write suffices.
        size_t off = 0;
        while (off < out.size()) {
          auto w = write(fd, out.data() + off, out.size() - off);
          if (w <= 0) {
            closed = true;
            break;
          }
          off += static_cast<size_t>(w);
        }
      }
      if (closed)
        close_conn(ep, fd, conns);
    }
  }
}
