#include "http/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <exception>
#include <set>
#include <system_error>

#include "core/check.h"
#include "core/host_port.h"

namespace kiln::http {

namespace {

using SteadyClock = std::chrono::steady_clock;
using Deadline = SteadyClock::time_point;

// A connection closed after an error may still have request bytes in flight; closing it
// with unread data would reset it and could destroy the response before the client reads
// it. So the server half-closes and drains for at most this long first.
constexpr auto kLingerTime = std::chrono::seconds(1);
// Rejected (503) connections lingering in the accept thread at most; beyond: closed at once.
constexpr size_t kMaxLingering = 256;
constexpr size_t kReadChunk = 16 * 1024;
// Bodies up to this size are sent with the head in one write.
constexpr size_t kCoalesceBytes = 64 * 1024;

std::string_view StatusText(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

// RFC 9110 tchar.
bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsTokenChar);
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes %XX escapes; an invalid escape is kept as it is. In queries '+' is a space.
std::string PercentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (plus_is_space && s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && HexDigit(s[i + 1]) >= 0 &&
               HexDigit(s[i + 2]) >= 0) {
      out += static_cast<char>(HexDigit(s[i + 1]) * 16 + HexDigit(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

char ToLowerAscii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ToLowerAscii(c);
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ToLowerAscii(a[i]) != ToLowerAscii(b[i])) return false;
  }
  return true;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// True when the comma-separated header value `list` holds `token` (case-insensitive).
bool HasToken(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    if (EqualsIgnoreCase(TrimOws(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// Splits a raw (still percent-encoded) path "/a/b" into {"a", "b"}; "/" is {""}.
std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> segments;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  while (true) {
    const size_t slash = path.find('/');
    segments.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return segments;
}

enum class WaitResult { kReady, kTimeout, kStopped, kError };

// Waits until `fd` has one of `events`, the stop pipe `stop_fd` is readable (Stop() was
// called) or `deadline` passes.
WaitResult WaitFd(int fd, short events, int stop_fd, Deadline deadline) {
  while (true) {
    const auto left = deadline - SteadyClock::now();
    if (left <= SteadyClock::duration::zero()) return WaitResult::kTimeout;
    // Round up so that a sub-millisecond remainder does not spin with a 0 timeout.
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    pollfd p[2] = {{stop_fd, POLLIN, 0}, {fd, events, 0}};
    const int n = ::poll(p, 2, static_cast<int>(std::min<int64_t>(ms, 1 << 30)));
    if (n < 0) {
      if (errno == EINTR) continue;
      return WaitResult::kError;
    }
    if (p[0].revents != 0) return WaitResult::kStopped;
    if (p[1].revents != 0) return WaitResult::kReady;  // Errors show up in the next call.
  }
}

enum class ReadResult { kData, kEof, kTimeout, kStopped, kError };

// Appends at least one byte from the non-blocking socket `fd` to `buf`, waiting until
// `deadline` at most.
ReadResult ReadSome(int fd, int stop_fd, std::string& buf, Deadline deadline) {
  char chunk[kReadChunk];
  while (true) {
    const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n > 0) {
      buf.append(chunk, static_cast<size_t>(n));
      return ReadResult::kData;
    }
    if (n == 0) return ReadResult::kEof;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return ReadResult::kError;
    switch (WaitFd(fd, POLLIN, stop_fd, deadline)) {
      case WaitResult::kReady:
        continue;
      case WaitResult::kTimeout:
        return ReadResult::kTimeout;
      case WaitResult::kStopped:
        return ReadResult::kStopped;
      case WaitResult::kError:
        return ReadResult::kError;
    }
  }
}

// Sends all of `data` on the non-blocking socket `fd`; false when the peer has gone, the
// server is stopping while the client does not read, or `deadline` passed.
bool SendAll(int fd, int stop_fd, std::string_view data, Deadline deadline) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n >= 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
    if (WaitFd(fd, POLLOUT, stop_fd, deadline) != WaitResult::kReady) return false;
  }
  return true;
}

// Drains what the client still sends after a half-close, until it closes, `deadline`
// passes or the server stops (see kLingerTime).
void Linger(int fd, int stop_fd, Deadline deadline) {
  std::string sink;
  while (ReadSome(fd, stop_fd, sink, deadline) == ReadResult::kData) sink.clear();
}

bool HasBody(int status) { return status >= 200 && status != 204 && status != 304; }

// Response headers the server writes itself; a handler's copies are dropped.
bool IsReservedHeader(std::string_view name) {
  return EqualsIgnoreCase(name, "content-length") || EqualsIgnoreCase(name, "connection") ||
         EqualsIgnoreCase(name, "transfer-encoding") || EqualsIgnoreCase(name, "keep-alive");
}

bool IsSafeHeaderValue(std::string_view v) {
  return v.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// The status line and headers of `r`. `content_length` is nullopt for a streaming response.
std::string SerializeHead(const Response& r, bool keep_alive, std::optional<size_t> content_length,
                          std::chrono::milliseconds idle_timeout) {
  std::string head = fmt::format("HTTP/1.1 {} {}\r\n", r.status, StatusText(r.status));
  if (!r.content_type.empty() && HasBody(r.status) && IsSafeHeaderValue(r.content_type)) {
    head += fmt::format("Content-Type: {}\r\n", r.content_type);
  }
  if (content_length && HasBody(r.status)) {
    head += fmt::format("Content-Length: {}\r\n", *content_length);
  }
  for (const auto& [name, value] : r.headers) {
    if (!IsToken(name) || !IsSafeHeaderValue(value) || IsReservedHeader(name)) continue;
    head += fmt::format("{}: {}\r\n", name, value);
  }
  if (keep_alive) {
    head += fmt::format(
        "Connection: keep-alive\r\nKeep-Alive: timeout={}\r\n",
        std::max<int64_t>(1, std::chrono::ceil<std::chrono::seconds>(idle_timeout).count()));
  } else {
    head += "Connection: close\r\n";
  }
  head += "\r\n";
  return head;
}

// Where the request head ends: the index just past the blank line, or npos. Lines end in
// CRLF or a bare LF.
size_t FindHeadEnd(std::string_view buf) {
  for (size_t i = buf.find('\n'); i != std::string_view::npos; i = buf.find('\n', i + 1)) {
    if (i + 1 < buf.size() && buf[i + 1] == '\n') return i + 2;
    if (i + 2 < buf.size() && buf[i + 1] == '\r' && buf[i + 2] == '\n') return i + 3;
  }
  return std::string_view::npos;
}

struct HttpError {
  int status;
  std::string message;
};

// The parts of a request head that framing and routing need.
struct RequestHead {
  std::string raw_path;  // Still percent-encoded, for routing.
  bool http11 = true;
  bool keep_alive = true;
  bool expect_continue = false;
  uint64_t content_length = 0;
};

// Parses the request line and headers (sans-IO). `head` is everything before the blank
// line. Fills `req` (method, path, query, headers) and `out`.
std::optional<HttpError> ParseHead(std::string_view head, const ServerOptions& options,
                                   Request& req, RequestHead& out) {
  // Bare CR and NUL are not allowed anywhere in a head.
  for (size_t i = 0; i < head.size(); ++i) {
    if (head[i] == '\0') return HttpError{400, "NUL byte in request head"};
    if (head[i] == '\r' && (i + 1 >= head.size() || head[i + 1] != '\n')) {
      return HttpError{400, "bare CR in request head"};
    }
  }
  std::vector<std::string_view> lines;
  while (!head.empty()) {
    const size_t nl = head.find('\n');
    std::string_view line = head.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (nl == std::string_view::npos) break;
    head.remove_prefix(nl + 1);
  }
  if (lines.empty()) return HttpError{400, "empty request"};

  // request-line = method SP request-target SP HTTP-version
  const std::string_view line = lines[0];
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return HttpError{400, "malformed request line"};
  }
  const std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(method)) return HttpError{400, "malformed request method"};
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
    return HttpError{400, "malformed HTTP version"};
  }
  if (version[5] != '1') return HttpError{505, "only HTTP/1.x is supported"};
  out.http11 = version[7] != '0';
  for (char c : target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F) {
      return HttpError{400, "malformed request target"};
    }
  }
  // absolute-form ("http://host/path") as a proxy would send it: keep the path.
  if (target.size() > 7 && (EqualsIgnoreCase(target.substr(0, 7), "http://") ||
                            EqualsIgnoreCase(target.substr(0, 8), "https://"))) {
    const size_t authority = target.find("//") + 2;
    const size_t slash = target.find_first_of("/?", authority);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    if (!target.empty() && target.front() == '?') return HttpError{400, "malformed request target"};
  }
  if (target.empty() || target.front() != '/') return HttpError{400, "malformed request target"};
  if (const size_t hash = target.find('#'); hash != std::string_view::npos) {
    target = target.substr(0, hash);
  }
  req.method = std::string(method);
  const size_t q = target.find('?');
  out.raw_path = std::string(target.substr(0, q));
  req.path = PercentDecode(out.raw_path, /*plus_is_space=*/false);
  if (q != std::string_view::npos) {
    std::string_view query = target.substr(q + 1);
    while (!query.empty()) {
      const size_t amp = query.find('&');
      const std::string_view pair = query.substr(0, amp);
      if (!pair.empty()) {
        const size_t eq = pair.find('=');
        req.query[PercentDecode(pair.substr(0, eq), true)] =
            eq == std::string_view::npos ? std::string() : PercentDecode(pair.substr(eq + 1), true);
      }
      if (amp == std::string_view::npos) break;
      query.remove_prefix(amp + 1);
    }
  }

  // header-field = field-name ":" OWS field-value OWS
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string_view field = lines[i];
    if (field.empty()) break;  // The blank line that ends the head.
    if (field.front() == ' ' || field.front() == '\t') {
      return HttpError{400, "obsolete header line folding"};
    }
    const size_t colon = field.find(':');
    if (colon == std::string_view::npos || !IsToken(field.substr(0, colon))) {
      return HttpError{400, "malformed header field"};
    }
    const std::string_view value = TrimOws(field.substr(colon + 1));
    for (char c : value) {
      const auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7F) {
        return HttpError{400, "control character in header value"};
      }
    }
    std::string name = ToLower(field.substr(0, colon));
    auto [it, inserted] = req.headers.try_emplace(name, value);
    if (!inserted) {
      if (name == "content-length") {
        if (it->second != value) return HttpError{400, "conflicting Content-Length headers"};
      } else {
        it->second += name == "cookie" ? "; " : ", ";
        it->second += value;
      }
    }
  }

  // Framing: Content-Length only.
  if (const auto te = req.headers.find("transfer-encoding"); te != req.headers.end()) {
    if (HasToken(te->second, "chunked")) {
      return HttpError{411, "chunked request bodies are not supported; send Content-Length"};
    }
    return HttpError{501, fmt::format("transfer coding '{}' is not supported", te->second)};
  }
  if (const auto cl = req.headers.find("content-length"); cl != req.headers.end()) {
    const std::string& v = cl->second;
    const auto r = std::from_chars(v.data(), v.data() + v.size(), out.content_length);
    if (v.empty() || r.ec != std::errc() || r.ptr != v.data() + v.size() ||
        !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      // An overflowing number is still "too large", not malformed.
      if (!v.empty() && r.ec == std::errc::result_out_of_range) {
        return HttpError{413,
                         fmt::format("request body larger than {} bytes", options.max_body_bytes)};
      }
      return HttpError{400, "invalid Content-Length"};
    }
    if (out.content_length > options.max_body_bytes) {
      return HttpError{413,
                       fmt::format("request body larger than {} bytes", options.max_body_bytes)};
    }
  }
  const auto conn = req.headers.find("connection");
  const std::string_view connection =
      conn == req.headers.end() ? std::string_view() : std::string_view(conn->second);
  out.keep_alive = out.http11 ? !HasToken(connection, "close") : HasToken(connection, "keep-alive");
  if (const auto ex = req.headers.find("expect"); ex != req.headers.end()) {
    out.expect_continue = out.http11 && EqualsIgnoreCase(ex->second, "100-continue");
  }
  return std::nullopt;
}

// The writer of a streaming response: blocking writes with the write timeout.
class SocketStreamWriter final : public StreamWriter {
 public:
  SocketStreamWriter(int fd, int stop_fd, std::stop_token stop, std::chrono::milliseconds timeout)
      : fd_(fd), stop_fd_(stop_fd), stop_(std::move(stop)), timeout_(timeout) {}

  bool Write(std::string_view data) override {
    if (failed_ || stop_.stop_requested()) {
      failed_ = true;
      return false;
    }
    if (!SendAll(fd_, stop_fd_, data, SteadyClock::now() + timeout_)) failed_ = true;
    return !failed_;
  }

 private:
  const int fd_;
  const int stop_fd_;
  const std::stop_token stop_;
  const std::chrono::milliseconds timeout_;
  bool failed_ = false;
};

std::string PeerAddress(const sockaddr_in& addr) {
  char ip[INET_ADDRSTRLEN] = "?";
  ::inet_ntop(AF_INET, &addr.sin_addr, ip, sizeof(ip));
  return fmt::format("{}:{}", ip, ntohs(addr.sin_port));
}

void ClosePipe(int (&fds)[2]) {
  for (int& fd : fds) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
}

}  // namespace

struct HttpServer::RouteEntry {
  enum class SegmentKind { kLiteral = 0, kParam = 1, kRest = 2 };  // Most specific first.
  struct Segment {
    SegmentKind kind;
    std::string text;  // The literal or the parameter name.
  };
  std::string method;
  std::string pattern;
  std::vector<Segment> segments;
  int literals = 0;
  bool has_rest = false;
  Handler handler;

  // Matches the raw path segments; on success fills `params` (when not null).
  bool Match(const std::vector<std::string_view>& path,
             std::map<std::string, std::string>* params) const {
    for (size_t i = 0; i < segments.size(); ++i) {
      const Segment& s = segments[i];
      if (s.kind == SegmentKind::kRest) {
        if (params != nullptr) {
          std::string rest;
          for (size_t j = i; j < path.size(); ++j) {
            if (j > i) rest += '/';
            rest += PercentDecode(path[j], false);
          }
          (*params)[s.text] = std::move(rest);
        }
        return true;
      }
      if (i >= path.size()) return false;
      if (s.kind == SegmentKind::kLiteral) {
        if (PercentDecode(path[i], false) != s.text) return false;
      } else {
        if (path[i].empty()) return false;
        if (params != nullptr) (*params)[s.text] = PercentDecode(path[i], false);
      }
    }
    return segments.size() == path.size();
  }

  // The ordering documented at HttpServer::Route().
  bool MoreSpecificThan(const RouteEntry& other) const {
    if (literals != other.literals) return literals > other.literals;
    if (has_rest != other.has_rest) return !has_rest;
    for (size_t i = 0; i < segments.size() && i < other.segments.size(); ++i) {
      if (segments[i].kind != other.segments[i].kind) {
        return segments[i].kind < other.segments[i].kind;
      }
    }
    return false;
  }
};

struct HttpServer::Connection {
  int fd = -1;  // Closed by the accept thread or Stop() after the thread is joined.
  std::string remote;
  Deadline accepted_at;
  // Guarded by HttpServer::mu_:
  bool streaming = false;    // A streaming response is running; watch for hang-ups.
  bool hangup_seen = false;  // The peer hung up during the stream; stop was requested.
  bool done = false;         // The thread has finished; join it and close fd.
  std::jthread thread;
};

struct HttpServer::Counters {
  std::atomic<uint64_t> requests{0};
  std::array<std::atomic<uint64_t>, 6> responses_by_class{};
  std::atomic<uint64_t> streams{0};
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> rejected{0};
  std::atomic<uint64_t> handler_exceptions{0};
};

Result<std::pair<std::string, uint16_t>> ParseListenAddress(std::string_view listen) {
  KILN_ASSIGN_OR_RETURN(
      HostPort hp, ParseHostPort(listen, {.default_port = std::nullopt, .allow_port_zero = true}));
  return std::make_pair(std::move(hp.host), hp.port);
}

HttpServer::HttpServer() : HttpServer(ServerOptions{}) {}

HttpServer::HttpServer(ServerOptions options)
    : options_(std::move(options)), counters_(std::make_unique<Counters>()) {}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Route(std::string_view method, std::string pattern, Handler handler) {
  KILN_CHECK(!started_) << "HttpServer::Route after Start";
  KILN_CHECK(IsToken(method)) << "bad HTTP method '" << method << "'";
  KILN_CHECK(!pattern.empty() && pattern.front() == '/')
      << "route must start with '/': " << pattern;
  auto route = std::make_unique<RouteEntry>();
  route->method = std::string(method);
  route->pattern = pattern;
  route->handler = std::move(handler);
  std::set<std::string, std::less<>> names;
  const std::vector<std::string_view> parts = SplitPath(pattern);
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string_view part = parts[i];
    if (part.find_first_of("{}") == std::string_view::npos) {
      route->segments.push_back({RouteEntry::SegmentKind::kLiteral, std::string(part)});
      ++route->literals;
      continue;
    }
    KILN_CHECK(part.size() > 2 && part.front() == '{' && part.back() == '}')
        << "'{...}' must be a whole segment: " << pattern;
    std::string_view name = part.substr(1, part.size() - 2);
    RouteEntry::SegmentKind kind = RouteEntry::SegmentKind::kParam;
    if (name.size() > 3 && name.substr(name.size() - 3) == "...") {
      KILN_CHECK(i + 1 == parts.size()) << "'{name...}' must be the last segment: " << pattern;
      name.remove_suffix(3);
      kind = RouteEntry::SegmentKind::kRest;
      route->has_rest = true;
    }
    KILN_CHECK(!name.empty() && name.find_first_of("{}/.") == std::string_view::npos)
        << "bad parameter name in " << pattern;
    KILN_CHECK(names.insert(std::string(name)).second) << "repeated parameter in " << pattern;
    route->segments.push_back({kind, std::string(name)});
  }
  for (auto& existing : routes_) {
    if (existing->method == route->method && existing->pattern == route->pattern) {
      existing = std::move(route);
      return;
    }
  }
  routes_.push_back(std::move(route));
}

void HttpServer::Get(std::string path, Handler handler) {
  Route("GET", std::move(path), std::move(handler));
}

void HttpServer::SetErrorHandler(ErrorHandler handler) {
  KILN_CHECK(!started_) << "HttpServer::SetErrorHandler after Start";
  error_handler_ = std::move(handler);
}

Status HttpServer::Start(std::string_view listen) {
  if (started_) return FailedPreconditionError("http server already started");
  KILN_ASSIGN_OR_RETURN(auto addr, ParseListenAddress(listen));
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(addr.second);
  if (int rc = ::getaddrinfo(addr.first.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return InvalidArgumentError(fmt::format("{}: {}", listen, gai_strerror(rc)));
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    ::freeaddrinfo(res);
    return UnavailableError(fmt::format("socket: {}", std::strerror(errno)));
  }
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const int rc = ::bind(fd, res->ai_addr, res->ai_addrlen);
  const int bind_errno = errno;
  ::freeaddrinfo(res);
  if (rc != 0 || ::listen(fd, SOMAXCONN) != 0) {
    const int err = rc != 0 ? bind_errno : errno;
    ::close(fd);
    return UnavailableError(fmt::format("cannot listen on {}: {}", listen, std::strerror(err)));
  }
  sockaddr_in bound{};
  socklen_t len = sizeof(bound);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  if (::pipe2(stop_fds_, O_CLOEXEC | O_NONBLOCK) != 0 ||
      ::pipe2(notify_fds_, O_CLOEXEC | O_NONBLOCK) != 0) {
    const int err = errno;
    ::close(fd);
    ClosePipe(stop_fds_);
    return UnavailableError(fmt::format("pipe: {}", std::strerror(err)));
  }
  port_ = ntohs(bound.sin_port);
  listen_fd_ = fd;
  started_ = true;
  accept_thread_ = std::jthread([this] { AcceptLoop(); });
  return OkStatus();
}

void HttpServer::Stop() {
  if (!started_) return;
  // Every poll of every thread watches the read end, so one byte wakes them all.
  const char b = 1;
  (void)!::write(stop_fds_[1], &b, 1);
  accept_thread_.join();
  std::list<std::unique_ptr<Connection>> connections;
  {
    MutexLock lock(mu_);
    for (auto& c : connections_) c->thread.request_stop();
    connections.swap(connections_);
  }
  for (auto& c : connections) {
    c->thread.join();
    ::close(c->fd);
  }
  {
    MutexLock lock(mu_);
    active_ = 0;
  }
  for (const Lingering& l : lingering_) ::close(l.fd);
  lingering_.clear();
  ::close(listen_fd_);
  listen_fd_ = -1;
  ClosePipe(stop_fds_);
  ClosePipe(notify_fds_);
  started_ = false;
}

ServerStats HttpServer::stats() const {
  ServerStats s;
  s.requests = counters_->requests.load(std::memory_order_relaxed);
  for (size_t i = 0; i < s.responses_by_class.size(); ++i) {
    s.responses_by_class[i] = counters_->responses_by_class[i].load(std::memory_order_relaxed);
  }
  s.streams = counters_->streams.load(std::memory_order_relaxed);
  s.connections_accepted = counters_->accepted.load(std::memory_order_relaxed);
  s.connections_rejected = counters_->rejected.load(std::memory_order_relaxed);
  s.handler_exceptions = counters_->handler_exceptions.load(std::memory_order_relaxed);
  MutexLock lock(mu_);
  s.open_connections = active_;
  return s;
}

void HttpServer::Notify() {
  const char b = 1;
  (void)!::write(notify_fds_[1], &b, 1);  // A full pipe already wakes the accept thread.
}

void HttpServer::AcceptLoop() {
  std::vector<pollfd> fds;
  std::vector<Connection*> watched;
  while (true) {
    ReapFinished();
    fds.clear();
    watched.clear();
    fds.push_back({stop_fds_[0], POLLIN, 0});
    fds.push_back({notify_fds_[0], POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    {
      MutexLock lock(mu_);
      for (const auto& c : connections_) {
        if (c->streaming && !c->hangup_seen) {
          fds.push_back({c->fd, POLLRDHUP, 0});
          watched.push_back(c.get());
        }
      }
    }
    const size_t lingering_base = fds.size();
    int timeout_ms = -1;
    const Deadline now = SteadyClock::now();
    for (const Lingering& l : lingering_) {
      fds.push_back({l.fd, POLLIN, 0});
      const auto ms = std::max<int64_t>(
          0, std::chrono::ceil<std::chrono::milliseconds>(l.deadline - now).count());
      timeout_ms =
          timeout_ms < 0 ? static_cast<int>(ms) : std::min(timeout_ms, static_cast<int>(ms));
    }
    if (::poll(fds.data(), fds.size(), timeout_ms) < 0) {
      if (errno == EINTR) continue;
      if (options_.logger) options_.logger->Error("poll: {}", std::strerror(errno));
      return;
    }
    if (fds[0].revents != 0) return;  // Stop().
    if (fds[1].revents != 0) {
      char buf[256];
      while (::read(notify_fds_[0], buf, sizeof(buf)) > 0) {
      }
    }
    if (!watched.empty()) {
      MutexLock lock(mu_);
      for (size_t i = 0; i < watched.size(); ++i) {
        if ((fds[3 + i].revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
          watched[i]->hangup_seen = true;
          watched[i]->thread.request_stop();
        }
      }
    }
    // Rejected connections: drain until the client closes or the linger time is up.
    const Deadline after = SteadyClock::now();
    size_t kept = 0;
    for (size_t i = 0; i < lingering_.size(); ++i) {
      Lingering l = lingering_[i];
      bool close_it = after >= l.deadline;
      if (!close_it && fds[lingering_base + i].revents != 0) {
        char buf[kReadChunk];
        ssize_t n;
        while ((n = ::recv(l.fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
        }
        close_it = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
      }
      if (close_it) {
        ::close(l.fd);
      } else {
        lingering_[kept++] = l;
      }
    }
    lingering_.resize(kept);
    if ((fds[2].revents & POLLIN) != 0) Accept();
  }
}

void HttpServer::Accept() {
  sockaddr_in peer{};
  socklen_t peer_len = sizeof(peer);
  const int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &peer_len,
                           SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0) {
    // Out of descriptors or memory: the pending connection stays, so wait (for Stop() at
    // most) instead of spinning.
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
      if (options_.logger) options_.logger->Warn("accept: {}", std::strerror(errno));
      pollfd wake{stop_fds_[0], POLLIN, 0};
      ::poll(&wake, 1, 100);
    }
    return;
  }
  int one = 1;
  // Responses and events go out in whole writes; do not let Nagle delay them.
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  {
    MutexLock lock(mu_);
    if (active_ < options_.max_connections) {
      auto conn = std::make_unique<Connection>();
      conn->fd = fd;
      conn->remote = PeerAddress(peer);
      conn->accepted_at = SteadyClock::now();
      Connection* c = conn.get();
      connections_.push_back(std::move(conn));
      try {
        // Created under mu_, so the thread cannot mark itself done before `thread` is set.
        c->thread = std::jthread([this, c](std::stop_token stop) { ServeConnection(*c, stop); });
        ++active_;
        counters_->accepted.fetch_add(1, std::memory_order_relaxed);
        return;
      } catch (const std::system_error& e) {
        connections_.pop_back();
        if (options_.logger) options_.logger->Error("cannot start a thread: {}", e.what());
      }
    }
  }
  Reject(fd);
}

void HttpServer::Reject(int fd) {
  counters_->rejected.fetch_add(1, std::memory_order_relaxed);
  CountResponse(503);
  Response r = MakeError(503, "too many connections");
  std::string data = SerializeHead(r, /*keep_alive=*/false, r.body.size(), options_.idle_timeout);
  data += r.body;
  // One non-blocking attempt: a fresh socket's buffer takes a small response whole.
  (void)!::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ::shutdown(fd, SHUT_WR);
  if (lingering_.size() < kMaxLingering) {
    lingering_.push_back({fd, SteadyClock::now() + kLingerTime});
  } else {
    ::close(fd);
  }
}

void HttpServer::ReapFinished() {
  std::vector<std::unique_ptr<Connection>> finished;
  {
    MutexLock lock(mu_);
    for (auto it = connections_.begin(); it != connections_.end();) {
      if ((*it)->done) {
        finished.push_back(std::move(*it));
        it = connections_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& c : finished) {
    c->thread.join();  // Returns at once: the thread has finished its work.
    ::close(c->fd);
  }
}

void HttpServer::CountResponse(int status) {
  const int cls = status / 100;
  if (cls >= 1 && cls <= 5) {
    counters_->responses_by_class[static_cast<size_t>(cls)].fetch_add(1, std::memory_order_relaxed);
  }
}

Response HttpServer::MakeError(int status, std::string_view message) const {
  if (error_handler_) {
    try {
      Response r = error_handler_(status, message);
      r.status = status;
      r.stream = nullptr;
      return r;
    } catch (const std::exception& e) {
      if (options_.logger) options_.logger->Error("error handler threw: {}", e.what());
    } catch (...) {
      if (options_.logger) options_.logger->Error("error handler threw");
    }
  }
  Response r;
  r.status = status;
  r.body = fmt::format("{}\n", message);
  return r;
}

Response HttpServer::Dispatch(Request& request, std::string_view raw_path) {
  const std::vector<std::string_view> segments = SplitPath(raw_path);
  const RouteEntry* best = nullptr;
  const RouteEntry* best_get = nullptr;  // Serves HEAD when no HEAD route matches.
  std::set<std::string> allowed;
  for (const auto& route : routes_) {
    if (!route->Match(segments, nullptr)) continue;
    allowed.insert(route->method);
    if (route->method == request.method) {
      if (best == nullptr || route->MoreSpecificThan(*best)) best = route.get();
    } else if (request.method == "HEAD" && route->method == "GET") {
      if (best_get == nullptr || route->MoreSpecificThan(*best_get)) best_get = route.get();
    }
  }
  if (best == nullptr) best = best_get;
  if (best == nullptr) {
    if (allowed.empty()) return MakeError(404, fmt::format("no route for {}", request.path));
    if (allowed.count("GET") != 0) allowed.insert("HEAD");
    std::string allow;
    for (const std::string& m : allowed) allow += (allow.empty() ? "" : ", ") + m;
    Response r = MakeError(405, fmt::format("method {} not allowed for {} (allowed: {})",
                                            request.method, request.path, allow));
    r.headers.emplace_back("Allow", std::move(allow));
    return r;
  }
  best->Match(segments, &request.params);
  std::string failure;
  try {
    Response r = best->handler(request);
    if (r.status >= 200 && r.status <= 599) return r;
    if (options_.logger) {
      options_.logger->Error("{} {}: handler answered invalid status {}", request.method,
                             request.path, r.status);
    }
    return MakeError(500, "internal server error");
  } catch (const std::exception& e) {
    failure = e.what();
  } catch (...) {
    failure = "unknown exception";
  }
  counters_->handler_exceptions.fetch_add(1, std::memory_order_relaxed);
  if (options_.logger) {
    options_.logger->Error("{} {}: handler threw: {}", request.method, request.path, failure);
  }
  return MakeError(500, "internal server error");
}

void HttpServer::ServeConnection(Connection& conn, std::stop_token stop) {
  const int fd = conn.fd;
  const int stop_fd = stop_fds_[0];
  std::string buf;  // Received and not yet consumed (may hold a pipelined request).
  bool linger = false;

  // Sends `r`; false when the connection must close afterwards.
  const auto send_response = [&](const Response& r, bool head_only, bool keep_alive) {
    CountResponse(r.status);
    const Deadline deadline = SteadyClock::now() + options_.write_timeout;
    const bool with_body = !head_only && HasBody(r.status);
    std::string head = SerializeHead(r, keep_alive, r.body.size(), options_.idle_timeout);
    bool ok;
    if (with_body && r.body.size() <= kCoalesceBytes) {
      head += r.body;
      ok = SendAll(fd, stop_fd, head, deadline);
    } else {
      ok = SendAll(fd, stop_fd, head, deadline) &&
           (!with_body || SendAll(fd, stop_fd, r.body, deadline));
    }
    return ok && keep_alive;
  };
  // Answers an error the server detected in the request; the connection then closes.
  const auto fail = [&](int status, std::string_view message, bool head_only) {
    counters_->requests.fetch_add(1, std::memory_order_relaxed);
    if (options_.logger) {
      options_.logger->Debug("{}: {} {}", conn.remote, status, message);
    }
    send_response(MakeError(status, message), head_only, /*keep_alive=*/false);
    linger = true;
  };

  for (bool first = true; !stop.stop_requested(); first = false) {
    // Wait for the next request: the first within the request timeout of the accept, the
    // later ones within the idle timeout. Silence, EOF or Stop() close quietly.
    if (buf.empty()) {
      const Deadline idle = first ? conn.accepted_at + options_.request_timeout
                                  : SteadyClock::now() + options_.idle_timeout;
      if (ReadSome(fd, stop_fd, buf, idle) != ReadResult::kData) break;
    }
    const Deadline deadline =
        (first ? conn.accepted_at : SteadyClock::now()) + options_.request_timeout;

    // The head, up to the blank line. Empty lines before the request line are ignored.
    size_t head_end = std::string::npos;
    ReadResult read = ReadResult::kData;
    while (true) {
      const size_t skip = buf.find_first_not_of("\r\n");
      buf.erase(0, skip);
      head_end = FindHeadEnd(buf);
      if (head_end != std::string::npos || buf.size() > options_.max_header_bytes) break;
      read = ReadSome(fd, stop_fd, buf, deadline);
      if (read != ReadResult::kData) break;
    }
    if (read == ReadResult::kTimeout) {
      if (!buf.empty()) fail(408, "request not received in time", false);
      break;
    }
    if (read != ReadResult::kData) break;
    if (head_end == std::string::npos || head_end > options_.max_header_bytes) {
      fail(431, fmt::format("request head larger than {} bytes", options_.max_header_bytes), false);
      break;
    }
    Request req;
    RequestHead head;
    if (std::optional<HttpError> error =
            ParseHead(std::string_view(buf).substr(0, head_end), options_, req, head)) {
      fail(error->status, error->message, req.method == "HEAD");
      break;
    }

    // The body: exactly Content-Length bytes.
    const size_t need = static_cast<size_t>(head.content_length);
    if (head.expect_continue && buf.size() - head_end < need) {
      if (!SendAll(fd, stop_fd, "HTTP/1.1 100 Continue\r\n\r\n",
                   SteadyClock::now() + options_.write_timeout)) {
        break;
      }
    }
    while (read == ReadResult::kData && buf.size() - head_end < need) {
      read = ReadSome(fd, stop_fd, buf, deadline);
    }
    if (read == ReadResult::kTimeout) fail(408, "request body not received in time", false);
    if (read != ReadResult::kData) break;
    req.body = buf.substr(head_end, need);
    buf.erase(0, head_end + need);
    req.remote_address = conn.remote;
    counters_->requests.fetch_add(1, std::memory_order_relaxed);

    const bool head_only = req.method == "HEAD";
    const Response response = Dispatch(req, head.raw_path);
    const bool keep_alive = head.keep_alive && !stop.stop_requested();
    if (!response.stream) {
      if (!send_response(response, head_only, keep_alive)) break;
      continue;
    }

    // A streaming response: the head without Content-Length, then the stream function
    // until it returns; then the connection closes.
    CountResponse(response.status);
    const std::string stream_head =
        SerializeHead(response, /*keep_alive=*/false, std::nullopt, options_.idle_timeout);
    if (!SendAll(fd, stop_fd, stream_head, SteadyClock::now() + options_.write_timeout) ||
        head_only || !HasBody(response.status)) {
      break;
    }
    {
      MutexLock lock(mu_);
      conn.streaming = true;
    }
    counters_->streams.fetch_add(1, std::memory_order_relaxed);
    Notify();  // The accept thread now watches for the client hanging up.
    SocketStreamWriter writer(fd, stop_fd, stop, options_.write_timeout);
    std::string failure;
    try {
      response.stream(writer, stop);
    } catch (const std::exception& e) {
      failure = e.what();
    } catch (...) {
      failure = "unknown exception";
    }
    if (!failure.empty()) {
      counters_->handler_exceptions.fetch_add(1, std::memory_order_relaxed);
      if (options_.logger) {
        options_.logger->Error("{} {}: stream threw: {}", req.method, req.path, failure);
      }
    }
    counters_->streams.fetch_sub(1, std::memory_order_relaxed);
    {
      MutexLock lock(mu_);
      conn.streaming = false;
    }
    break;
  }

  // Half-close; when the client may still be sending, drain first (see kLingerTime).
  ::shutdown(fd, SHUT_WR);
  pollfd p{fd, POLLIN, 0};
  if (linger || !buf.empty() || ::poll(&p, 1, 0) == 1) {
    Linger(fd, stop_fd, SteadyClock::now() + kLingerTime);
  }
  {
    MutexLock lock(mu_);
    conn.done = true;
    --active_;
  }
  Notify();
}

}  // namespace kiln::http
