// The console's Events page: rendered from the stack's AsyncAPI document (GET /asyncapi.json), so it
// shows exactly what another team reads. DOM built with textContent only: nothing from the document
// is ever parsed as HTML.

const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
};

const pretty = (value) => JSON.stringify(value, null, 2);

// An AsyncAPI summary is CommonMark: its `code spans` shown as code, not as backticks (text nodes only).
const withCode = (text) => {
  const span = document.createElement("span");
  (text || "").split(/`([^`]+)`/).forEach((part, i) => {
    if (part) span.append(i % 2 ? el("code", { text: part }) : part);
  });
  return span;
};

// "#/channels/topic/messages/fanout.data.generated.v1" -> ["topic", "fanout.data.generated.v1"]
const messageOf = (ref) => {
  const parts = (ref && ref.$ref ? ref.$ref : "").split("/");
  return parts.length === 5 && parts[1] === "channels" ? [parts[2], parts[4]] : [null, null];
};

// Producers and consumers of each type: the operations whose messages name it.
function parties(doc) {
  const found = {};
  for (const [name, op] of Object.entries(doc.operations || {})) {
    for (const ref of op.messages || []) {
      const [channel, type] = messageOf(ref);
      if (!type) continue;
      found[type] ??= { send: [], receive: [] };
      (op.action === "send" ? found[type].send : found[type].receive).push({ name, op, channel });
    }
  }
  return found;
}

function selection(op) {
  const x = op["x-fanout"] || {};
  if (x.source === "bus") return `event pattern ${JSON.stringify(x.eventPattern)}`;
  if (x.filterPolicy) return `filter policy ${JSON.stringify(x.filterPolicy)} (${x.filterPolicyScope})`;
  return "every event on the topic";
}

function partyList(title, items, describe) {
  const list = el("ul");
  for (const item of items) list.append(describe(item));
  return el("div", { class: "ev-party" }, el("h3", { text: title }),
    items.length ? list : el("p", { class: "ev-none", text: "none" }));
}

function renderType(doc, type, message, who) {
  const example = (message.examples || [])[0];
  const producers = partyList("Produced by", who.send, ({ name, op, channel }) =>
    el("li", {}, el("code", { text: name }), ` on the ${channel}: `, withCode(op.summary || "")));
  const consumers = partyList("Consumed by", who.receive, ({ name, op, channel }) => {
    const handler = (op["x-fanout"] || {}).handler;
    return el("li", { "data-consumer": name }, el("code", { text: name }),
      ` from the ${channel}, ${selection(op)}${handler ? `, handler ${handler}` : ", no handler"}`);
  });
  return el("section", { class: "ev-type", id: `type-${type}`, "data-type": type },
    el("h2", { text: type }),
    el("p", { class: "ev-meta" }, withCode(message.summary || message.title || "")),
    el("div", { class: "ev-columns" }, producers, consumers),
    el("details", {}, el("summary", { text: "Schema (payload)" }),
      el("pre", { class: "ev-schema", text: pretty(message.payload && message.payload.schema) })),
    example
      ? el("details", { open: "" }, el("summary", { text: "Example" }),
        el("pre", { class: "ev-example", text: pretty(example.payload) }))
      : el("p", { class: "ev-none", text: "no example in the schema" }));
}

async function main() {
  const status = document.getElementById("ev-status");
  const list = document.getElementById("ev-list");
  try {
    const answer = await fetch("/asyncapi.json", { headers: { Accept: "application/json" } });
    if (!answer.ok) throw new Error(`GET /asyncapi.json answered ${answer.status}`);
    const doc = await answer.json();
    const messages = (doc.components && doc.components.messages) || {};
    const who = parties(doc);
    for (const [type, message] of Object.entries(messages)) {
      list.append(renderType(doc, type, message, who[type] || { send: [], receive: [] }));
    }
    status.textContent = `${Object.keys(messages).length} event types · ${doc.info.title} · AsyncAPI ${doc.asyncapi}`;
  } catch (error) {
    status.textContent = `Could not load the AsyncAPI document: ${error.message}`;
  }
}

main();
