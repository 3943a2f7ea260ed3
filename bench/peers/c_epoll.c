/*
 * Upcase peer: the close-to-the-hardware reference. One thread, one
 * edge-triggered epoll loop, one 64 KiB buffer per connection.
 *
 * Usage: c_epoll PORT   (0 picks a free port; prints "listening PORT")
 * Build: gcc -O3 -o c_epoll c_epoll.c   (the benchmark does this)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE (64 * 1024)
#define MAX_EVENTS 256

struct conn {
  int fd;
  /* The client half-closed: finish writing, then send our FIN. */
  int eof;
  /* buf[off, len) is read and uppercased but not written yet. */
  size_t off, len;
  unsigned char buf[BUF_SIZE];
};

/* Branch-free, so that -O3 vectorises it: subtracts 32 from a-z only. */
static void upper(unsigned char *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = b[i];
    b[i] = c - (((unsigned char)(c - 'a') < 26u) << 5);
  }
}

static void drop(struct conn *c) {
  /* Closing the last descriptor also takes it out of the epoll set. */
  close(c->fd);
  free(c);
}

/*
 * Runs a connection until the kernel says EAGAIN. Edge-triggered: nothing
 * more is reported for this socket until the state changes again, so every
 * path must end at EAGAIN, EOF or an error. Pending bytes are written before
 * anything more is read, so a client that does not read stops being read.
 */
static void serve(struct conn *c) {
  for (;;) {
    while (c->off < c->len) {
      ssize_t n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
      if (n > 0) {
        c->off += (size_t)n;
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return; /* EPOLLOUT resumes here once the client reads */
      } else {
        drop(c); /* EPIPE, ECONNRESET: this connection only */
        return;
      }
    }
    c->off = c->len = 0;
    if (c->eof) {
      shutdown(c->fd, SHUT_WR);
      drop(c);
      return;
    }
    ssize_t n = read(c->fd, c->buf, BUF_SIZE);
    if (n > 0) {
      upper(c->buf, (size_t)n);
      c->len = (size_t)n;
    } else if (n == 0) {
      c->eof = 1;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return;
    } else if (errno != EINTR) {
      drop(c);
      return;
    }
  }
}

/* Accepts until EAGAIN; the listener is level-triggered, so an accept that
 * fails for want of descriptors is retried on the next wait. */
static void accept_all(int lfd, int ep) {
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    int one = 1;
    /* As Go and Node do by default: one small reply must not wait. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn *c = malloc(sizeof *c);
    if (c == NULL) {
      close(fd);
      continue;
    }
    c->fd = fd;
    c->eof = 0;
    c->off = c->len = 0;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
      drop(c);
      continue;
    }
    /* Data may have arrived before the socket joined the set. */
    serve(c);
  }
}

static int listen_on(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof addr;
  if (fd < 0 || bind(fd, (struct sockaddr *)&addr, len) < 0 ||
      listen(fd, SOMAXCONN) < 0 ||
      getsockname(fd, (struct sockaddr *)&addr, &len) < 0) {
    perror("c_epoll: listen");
    exit(1);
  }
  printf("listening %d\n", ntohs(addr.sin_port));
  fflush(stdout);
  return fd;
}

int main(int argc, char **argv) {
  int lfd = listen_on(argc > 1 ? atoi(argv[1]) : 0);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) {
    perror("c_epoll: epoll");
    return 1;
  }
  struct epoll_event events[MAX_EVENTS];
  for (;;) {
    int n = epoll_wait(ep, events, MAX_EVENTS, -1);
    if (n < 0 && errno != EINTR) {
      perror("c_epoll: epoll_wait");
      return 1;
    }
    /* One socket is reported at most once per wait, so a connection
     * dropped here cannot come up again later in the same batch. */
    for (int i = 0; i < n; i++) {
      if (events[i].data.ptr == NULL) {
        accept_all(lfd, ep);
      } else {
        serve(events[i].data.ptr);
      }
    }
  }
}
