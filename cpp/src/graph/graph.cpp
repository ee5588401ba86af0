#include "aidge_ptq_lite/graph.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <iomanip>
#include <set>
#include <sstream>


namespace apl {

// ---- Node ----------------------------------------------------------------------------------------

// An attribute of the wrong type (group=1.0, transB=1.0, a string where a list is expected) is
// refused naming the node: reading it as 0 or an empty list would silently change the op.
static const char* attribute_kind_name(Attribute::Kind k) {
  switch (k) {
    case Attribute::Kind::Int: return "an integer";
    case Attribute::Kind::Float: return "a float";
    case Attribute::Kind::Ints: return "a list of integers";
    case Attribute::Kind::Floats: return "a list of floats";
    case Attribute::Kind::String: return "a string";
  }
  return "?";
}
static const Attribute* typed_attr(const Node& n, const std::string& key,
                                   std::initializer_list<Attribute::Kind> allowed) {
  auto it = n.attrs.find(key);
  if (it == n.attrs.end()) return nullptr;
  for (Attribute::Kind k : allowed)
    if (it->second.kind == k) return &it->second;
  throw ShapeError(n.label() + ": attribute '" + key + "' must be " + attribute_kind_name(*allowed.begin()) +
                   ", got " + attribute_kind_name(it->second.kind));
}

int64_t Node::attr_int(const std::string& key, int64_t def) const {
  const Attribute* a = typed_attr(*this, key, {Attribute::Kind::Int});
  return a ? a->i : def;
}
float Node::attr_float(const std::string& key, float def) const {
  const Attribute* a = typed_attr(*this, key, {Attribute::Kind::Float, Attribute::Kind::Int});
  if (!a) return def;
  return a->kind == Attribute::Kind::Int ? static_cast<float>(a->i) : a->f;
}
std::vector<int64_t> Node::attr_ints(const std::string& key, std::vector<int64_t> def) const {
  const Attribute* a = typed_attr(*this, key, {Attribute::Kind::Ints});
  return a ? a->ints : def;
}
std::string Node::attr_string(const std::string& key, const std::string& def) const {
  const Attribute* a = typed_attr(*this, key, {Attribute::Kind::String});
  return a ? a->s : def;
}
void Node::set_attr(const std::string& key, int64_t v) {
  Attribute a;
  a.kind = Attribute::Kind::Int;
  a.i = v;
  attrs[key] = a;
}
void Node::set_attr(const std::string& key, float v) {
  Attribute a;
  a.kind = Attribute::Kind::Float;
  a.f = v;
  attrs[key] = a;
}
void Node::set_attr(const std::string& key, std::vector<int64_t> v) {
  Attribute a;
  a.kind = Attribute::Kind::Ints;
  a.ints = std::move(v);
  attrs[key] = a;
}
void Node::set_attr(const std::string& key, std::string v) {
  Attribute a;
  a.kind = Attribute::Kind::String;
  a.s = std::move(v);
  attrs[key] = a;
}
int64_t Node::param_count() const {
  int64_t n = 0;
  for (const Tensor& t : params) n += t.numel();
  return n;
}

// ---- Graph: construction -------------------------------------------------------------------------

// Versions are unique across graphs, so an assigned graph never looks like its old self.
static std::atomic<uint64_t> next_version{1};

Graph::Graph() : version_(next_version++) {}
Graph::~Graph() = default;
Graph::Graph(Graph&& o) noexcept
    : nodes_(std::move(o.nodes_)), index_(std::move(o.index_)), input_(std::move(o.input_)),
      outputs_(std::move(o.outputs_)), quant_(std::move(o.quant_)), version_(next_version++) {}
Graph& Graph::operator=(Graph&& o) noexcept {
  nodes_ = std::move(o.nodes_);
  index_ = std::move(o.index_);
  input_ = std::move(o.input_);
  outputs_ = std::move(o.outputs_);
  quant_ = std::move(o.quant_);
  invalidate();
  return *this;
}

Node& Graph::add_node(Node node) {
  if (node.name.empty()) throw GraphError(std::string("a ") + node.op() + " node has an empty name");
  if (contains(node.name)) throw GraphError("duplicate node name '" + node.name + "'");
  // A NaN constant (LeakyRelu alpha, Clip bound, Pad value) makes NaN outputs, and NaN codes
  // once quantized: refused here, naming the node, rather than run.
  for (const auto& [key, a] : node.attrs) {
    const bool nan = (a.kind == Attribute::Kind::Float && std::isnan(a.f)) ||
                     (a.kind == Attribute::Kind::Floats &&
                      std::any_of(a.floats.begin(), a.floats.end(), [](float f) { return std::isnan(f); }));
    if (nan) throw GraphError(node.label() + ": attribute '" + key + "' is NaN; give it a number");
  }
  if (node.is(OpKind::Input)) {
    if (!input_.empty())
      throw UnsupportedError("graph has several inputs ('" + input_ + "', '" + node.name +
                             "'); only single-input graphs are supported");
    input_ = node.name;
  }
  invalidate();
  index_[node.name] = nodes_.size();
  nodes_.push_back(std::move(node));
  return nodes_.back();
}

void Graph::set_outputs(std::vector<std::string> outputs) {
  invalidate();
  outputs_ = std::move(outputs);
}

void Graph::reindex() {
  index_.clear();
  for (size_t i = 0; i < nodes_.size(); ++i) index_[nodes_[i].name] = i;
}

void Graph::sort_topologically() {
  // Kahn's algorithm; stable (keeps the insertion order among ready nodes).
  std::map<std::string, int> pending;
  std::map<std::string, std::vector<size_t>> users;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const Node& n = nodes_[i];
    for (const std::string& in : n.inputs) {
      if (!contains(in))
        throw GraphError(n.label() + " reads '" + in + "', which no node produces");
      users[in].push_back(i);
    }
    pending[n.name] = static_cast<int>(n.inputs.size());
  }
  std::vector<size_t> order, ready;
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (pending[nodes_[i].name] == 0) ready.push_back(i);
  while (!ready.empty()) {
    std::sort(ready.begin(), ready.end(), std::greater<size_t>());
    const size_t i = ready.back();
    ready.pop_back();
    order.push_back(i);
    for (size_t u : users[nodes_[i].name])
      if (--pending[nodes_[u].name] == 0) ready.push_back(u);
  }
  if (order.size() != nodes_.size()) {
    std::string stuck;
    for (const Node& n : nodes_)
      if (pending[n.name] > 0) stuck += (stuck.empty() ? "" : ", ") + n.label();
    throw GraphError("graph has a cycle through: " + stuck);
  }
  std::vector<Node> sorted;
  sorted.reserve(nodes_.size());
  for (size_t i : order) sorted.push_back(std::move(nodes_[i]));
  nodes_ = std::move(sorted);
  reindex();
}

void Graph::infer_shapes() {
  for (Node& n : nodes_) {
    if (n.is(OpKind::Input)) continue;
    std::vector<Shape> ins;
    for (const std::string& in : n.inputs) ins.push_back(node(in).shape);
    n.shape = infer_shape(n, ins);
  }
}

void Graph::finalize() {
  if (input_.empty()) throw GraphError("graph has no Input node");
  if (outputs_.empty()) throw GraphError("graph has no output");
  for (const std::string& o : outputs_)
    if (!contains(o)) throw GraphError("graph output '" + o + "' is not a node");
  sort_topologically();
  infer_shapes();
  invalidate();
}

// ---- Graph: edits --------------------------------------------------------------------------------

bool Graph::is_output(const std::string& name) const {
  return std::find(outputs_.begin(), outputs_.end(), name) != outputs_.end();
}

std::vector<std::string> Graph::consumers(const std::string& name) const {
  std::vector<std::string> out;
  for (const Node& n : nodes_)
    if (std::find(n.inputs.begin(), n.inputs.end(), name) != n.inputs.end()) out.push_back(n.name);
  return out;
}

static void rename_input(Node& n, const std::string& from, const std::string& to) {
  std::replace(n.inputs.begin(), n.inputs.end(), from, to);
}

Node& Graph::insert_after(const std::string& producer, Node node) {
  if (!contains(producer)) throw GraphError("insert_after: no node named '" + producer + "'");
  const std::string name = node.name;
  for (Node& n : nodes_) rename_input(n, producer, name);
  std::replace(outputs_.begin(), outputs_.end(), producer, name);
  node.inputs = {producer};
  add_node(std::move(node));
  finalize();
  return this->node(name);
}

void Graph::remove(const std::string& name) {
  const Node& victim = node(name);
  // A quantized graph's codes, steps and requantization records are planned together: removing
  // a node (a Scaling node, a ReLU whose clamp the plan relies on) would silently change results.
  if (is_quantized())
    throw GraphError("remove: the graph is quantized; remove " + victim.label() +
                     " from the float graph (load_onnx again, or a clone taken before quantizing) and quantize it again");
  if (victim.inputs.size() != 1)
    throw GraphError("remove: " + victim.label() + " does not have exactly one input");
  const std::string source = victim.inputs[0];
  // The consumers may not accept the removed node's input (a Conv after a removed Conv gets the
  // wrong channel count): then the graph is put back as it was before the error propagates.
  std::vector<Node> nodes_before = nodes_;
  std::vector<std::string> outputs_before = outputs_;
  try {
    for (Node& n : nodes_) rename_input(n, name, source);
    std::replace(outputs_.begin(), outputs_.end(), name, source);
    nodes_.erase(nodes_.begin() + static_cast<std::ptrdiff_t>(index_.at(name)));
    reindex();
    finalize();
  } catch (...) {
    nodes_ = std::move(nodes_before);
    outputs_ = std::move(outputs_before);
    reindex();
    invalidate();
    throw;
  }
}

Node& Graph::replace(const std::string& name, Node node) {
  auto found = index_.find(name);
  if (found == index_.end()) throw GraphError("replace: no node named '" + name + "'");
  const size_t at = found->second;
  if (node.name != name && contains(node.name))
    throw GraphError("replace: a node named '" + node.name + "' already exists");
  const std::string new_name = node.name;
  if (nodes_[at].is(OpKind::Input) || node.is(OpKind::Input))
    throw GraphError("replace: the Input node cannot be replaced");
  for (Node& n : nodes_) rename_input(n, name, new_name);
  std::replace(outputs_.begin(), outputs_.end(), name, new_name);
  nodes_[at] = std::move(node);
  reindex();
  finalize();
  return this->node(new_name);
}

Graph Graph::clone() const {
  Graph g;
  g.nodes_ = nodes_;
  for (Node& n : g.nodes_)
    for (Tensor& t : n.params) t = t.clone();
  g.index_ = index_;
  g.input_ = input_;
  g.outputs_ = outputs_;
  g.quant_ = quant_;  // immutable: shared
  return g;
}

const QuantizeOptions& Graph::quant_config() const {
  if (!quant_) throw Error("the graph is not quantized");
  return *quant_;
}

void Graph::set_quantized(const QuantizeOptions& options) {
  quant_ = std::make_shared<const QuantizeOptions>(options);
  invalidate();
}

// ---- Graph: queries ------------------------------------------------------------------------------

std::vector<Node>& Graph::mutable_nodes() {
  invalidate();
  return nodes_;
}

Node& Graph::node(const std::string& name) {
  auto it = index_.find(name);
  if (it == index_.end()) throw GraphError("no node named '" + name + "'");
  invalidate();
  return nodes_[it->second];
}

const Node& Graph::node(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw GraphError("no node named '" + name + "'");
  return nodes_[it->second];
}

const Shape& Graph::input_shape() const { return node(input_).shape; }

int64_t Graph::param_count() const {
  int64_t n = 0;
  for (const Node& node : nodes_) n += node.param_count();
  return n;
}

std::string Graph::unique_name(const std::string& base) const {
  if (!contains(base)) return base;
  for (int i = 1;; ++i) {
    std::string candidate = base + "_" + std::to_string(i);
    if (!contains(candidate)) return candidate;
  }
}

std::string Graph::summary() const {
  std::ostringstream os;
  size_t wname = 4, wop = 2;
  for (const Node& n : nodes_) {
    wname = std::max(wname, n.name.size());
    wop = std::max(wop, std::string(n.op()).size());
  }
  wname = std::min<size_t>(wname, 40);
  os << std::left << std::setw(static_cast<int>(wname)) << "node" << "  "
     << std::setw(static_cast<int>(wop)) << "op" << "  " << std::setw(18) << "output (per sample)"
     << "  " << std::right << std::setw(10) << "params" << "  inputs\n";
  for (const Node& n : nodes_) {
    std::string ins;
    for (const std::string& i : n.inputs) ins += (ins.empty() ? "" : ", ") + i;
    os << std::left << std::setw(static_cast<int>(wname)) << n.name << "  "
       << std::setw(static_cast<int>(wop)) << n.op() << "  " << std::setw(18) << shape_str(n.shape)
       << "  " << std::right << std::setw(10) << n.param_count() << "  " << ins << "\n";
  }
  std::string outs;
  for (const std::string& o : outputs_) outs += (outs.empty() ? "" : ", ") + o;
  os << nodes_.size() << " nodes, " << param_count() << " parameters, input '" << input_ << "' "
     << shape_str(nodes_.empty() ? Shape{} : input_shape()) << ", outputs: " << outs;
  return os.str();
}

// ---- Graph: execution ----------------------------------------------------------------------------

void Graph::invalidate() { version_ = next_version++; }

std::shared_ptr<const Graph> Graph::snapshot() const {
  return std::shared_ptr<const Graph>(new Graph(*this));
}

}  // namespace apl
