#include "base/metrics.hpp"

#include <charconv>
#include <cmath>
#include <limits>

namespace osb::metrics {

namespace {

std::atomic<bool> recording{true};

constexpr char separator = '\x1f';

std::string join(std::initializer_list<std::string_view> values) {
  std::string key;
  bool first = true;
  for (auto v : values) {
    if (!first)
      key += separator;
    key += v;
    first = false;
  }
  return key;
}

std::vector<std::string_view> split(std::string_view key, size_t n) {
  std::vector<std::string_view> out;
  if (n == 0)
    return out;
  size_t pos = 0;
  for (;;) {
    auto next = key.find(separator, pos);
    if (next == std::string_view::npos) {
      out.push_back(key.substr(pos));
      return out;
    }
    out.push_back(key.substr(pos, next - pos));
    pos = next + 1;
  }
}

/// `{a="x",b="y"` without the closing brace (empty when no labels), so that
/// histograms can append `le`.
std::string label_text(const std::vector<std::string>& names,
                       std::string_view key) {
  if (names.empty())
    return {};
  auto values = split(key, names.size());
  std::string out = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0)
      out += ',';
    out += names[i];
    out += "=\"";
    out += escape_label(i < values.size() ? values[i] : std::string_view{});
    out += '"';
  }
  return out;
}

void write_sample(std::string& out, std::string_view name, std::string_view suffix,
            const std::string& labels, std::string_view value) {
  out += name;
  out += suffix;
  if (!labels.empty()) {
    out += labels;
    out += '}';
  }
  out += ' ';
  out += value;
  out += '\n';
}

void render_child(std::string& out, const std::string& name,
                  const std::string& labels, const counter& c) {
  write_sample(out, name, {}, labels, std::to_string(c.value()));
}

void render_child(std::string& out, const std::string& name,
                  const std::string& labels, const gauge& g) {
  write_sample(out, name, {}, labels, std::to_string(g.value()));
}

void render_child(std::string& out, const std::string& name,
                  const std::string& labels, const histogram& h) {
  uint64_t cumulative = 0;
  auto& bounds = h.bounds();
  auto prefix = labels.empty() ? std::string{"{"} : labels + ",";
  for (size_t i = 0; i <= bounds.size(); ++i) {
    cumulative += h.bucket(i);
    auto le = i < bounds.size() ? format_value(bounds[i]) : "+Inf";
    write_sample(out, name, "_bucket", prefix + "le=\"" + le + "\"",
           std::to_string(cumulative));
  }
  write_sample(out, name, "_sum", labels, format_value(h.sum()));
  // The count is the +Inf bucket, so that both agree within one render.
  write_sample(out, name, "_count", labels, std::to_string(cumulative));
}

const char* type_name(const counter*) {
  return "counter";
}
const char* type_name(const gauge*) {
  return "gauge";
}
const char* type_name(const histogram*) {
  return "histogram";
}

template <class T>
std::unique_ptr<T> make_child(const std::vector<double>*) {
  return std::make_unique<T>();
}

template <>
std::unique_ptr<histogram> make_child<histogram>(const std::vector<double>* bounds) {
  return std::make_unique<histogram>(*bounds);
}

} // namespace

bool enabled() {
  return recording.load(std::memory_order_relaxed);
}

void set_enabled(bool on) {
  recording.store(on, std::memory_order_relaxed);
}

const std::vector<double>& latency_buckets() {
  static const std::vector<double> xs{0.001, 0.0025, 0.005, 0.01, 0.025,
                                      0.05,  0.1,    0.25,  0.5,  1,
                                      2.5,   5,      10,    30,   60};
  return xs;
}

const std::vector<double>& phase_buckets() {
  static const std::vector<double> xs{0.001, 0.005, 0.01, 0.025, 0.05,
                                      0.1,   0.25,  0.5,  1,     2.5,
                                      5,     10,    30,   60,    300};
  return xs;
}

// -- histogram ----------------------------------------------------------------

histogram::histogram(const std::vector<double>& bounds)
  : bounds_(&bounds),
    buckets_(new std::atomic<uint64_t>[bounds.size() + 1]) {
  for (size_t i = 0; i <= bounds.size(); ++i)
    buckets_[i].store(0, std::memory_order_relaxed);
}

void histogram::observe(double x) {
  if (!enabled())
    return;
  size_t i = 0;
  auto n = bounds_->size();
  while (i < n && x > (*bounds_)[i])
    ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  if (std::isfinite(x))
    sum_nanos_.fetch_add(static_cast<int64_t>(std::llround(x * 1e9)),
                         std::memory_order_relaxed);
}

double histogram::sum() const {
  return static_cast<double>(sum_nanos_.load(std::memory_order_relaxed))
         / 1e9;
}

uint64_t histogram::count() const {
  uint64_t n = 0;
  for (size_t i = 0; i <= bounds_->size(); ++i)
    n += bucket(i);
  return n;
}

// -- family -------------------------------------------------------------------

template <class T>
T& family<T>::find(std::string key, size_t num_values) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = children_.find(key);
  if (i != children_.end())
    return *i->second;
  // A caller's mistake must not corrupt the output: missing values render
  // empty, extra ones are dropped by label_text().
  (void) num_values;
  auto& child = children_[std::move(key)];
  child = make_child<T>(bounds_);
  return *child;
}

template <class T>
T& family<T>::with(std::initializer_list<std::string_view> values) {
  return find(join(values), values.size());
}

template <class T>
T& family<T>::with(const std::vector<std::string>& values) {
  std::string key;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0)
      key += separator;
    key += values[i];
  }
  return find(std::move(key), values.size());
}

template <class T>
void family<T>::render(std::string& out) const {
  write_header(out, name_, help_, type_name(static_cast<T*>(nullptr)));
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& [key, child] : children_)
    render_child(out, name_, label_text(labels_, key), *child);
}

template class family<counter>;
template class family<gauge>;
template class family<histogram>;

// -- registry -----------------------------------------------------------------

namespace {

template <class F, class... Ts>
F& get_or_make(std::map<std::string, std::unique_ptr<F>>& xs,
               const std::string& name, Ts&&... xs_args) {
  auto& slot = xs[name];
  if (!slot)
    slot = std::make_unique<F>(name, std::forward<Ts>(xs_args)...);
  return *slot;
}

} // namespace

counter_family& registry::counters(const std::string& name,
                                   const std::string& help,
                                   std::vector<std::string> labels) {
  std::lock_guard<std::mutex> guard{mtx_};
  return get_or_make(counters_, name, help, std::move(labels));
}

gauge_family& registry::gauges(const std::string& name,
                               const std::string& help,
                               std::vector<std::string> labels) {
  std::lock_guard<std::mutex> guard{mtx_};
  return get_or_make(gauges_, name, help, std::move(labels));
}

histogram_family& registry::histograms(const std::string& name,
                                       const std::string& help,
                                       std::vector<std::string> labels,
                                       const std::vector<double>& bounds) {
  std::lock_guard<std::mutex> guard{mtx_};
  return get_or_make(histograms_, name, help, std::move(labels), &bounds);
}

void registry::add_collector(collector f) {
  std::lock_guard<std::mutex> guard{mtx_};
  collectors_.push_back(std::move(f));
}

std::string registry::render() const {
  std::string out;
  out.reserve(16384);
  std::lock_guard<std::mutex> guard{mtx_};
  // One sorted pass over all three maps: names are unique across kinds
  // by convention, and sorted output makes diffs and tests simple.
  std::map<std::string_view, std::function<void()>> order;
  for (auto& [name, f] : counters_)
    order.emplace(name, [&out, &f = *f] { f.render(out); });
  for (auto& [name, f] : gauges_)
    order.emplace(name, [&out, &f = *f] { f.render(out); });
  for (auto& [name, f] : histograms_)
    order.emplace(name, [&out, &f = *f] { f.render(out); });
  for (auto& [name, f] : order)
    f();
  for (auto& f : collectors_)
    f(out);
  return out;
}

registry& global() {
  static registry instance;
  return instance;
}

// -- text format --------------------------------------------------------------

std::string format_value(double x) {
  if (std::isnan(x))
    return "NaN";
  if (std::isinf(x))
    return x > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), x);
  if (ec != std::errc{})
    return "NaN";
  return std::string(buf, end);
}

std::string escape_label(std::string_view x) {
  std::string out;
  out.reserve(x.size());
  for (char c : x) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

void write_header(std::string& out, std::string_view name,
                  std::string_view help, std::string_view type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  for (char c : help) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

} // namespace osb::metrics
