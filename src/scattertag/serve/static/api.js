// Renders /openapi.json as a plain page (the usual Swagger UI would load scripts from a CDN).
"use strict";

function node(tag, text, cls) {
  const n = document.createElement(tag);
  if (text !== undefined) n.textContent = text;
  if (cls) n.className = cls;
  return n;
}

function typeOf(schema) {
  if (!schema) return "";
  if (schema.anyOf) return schema.anyOf.map(typeOf).join(" | ");
  if (schema.$ref) return schema.$ref.split("/").pop();
  return schema.type || "";
}

async function render() {
  const spec = await (await fetch("/openapi.json")).json();
  const main = document.getElementById("api");
  main.replaceChildren(node("h2", `${spec.info.title} ${spec.info.version}`), node("p", spec.info.description));
  const params = (op) => {
    const rows = (op.parameters || []).map((p) => {
      const tr = document.createElement("tr");
      for (const v of [p.name, p.in, typeOf(p.schema), p.required ? "required" : "", p.description || (p.schema || {}).description || ""]) {
        tr.append(node("td", v));
      }
      return tr;
    });
    if (!rows.length) return null;
    const table = node("table");
    const head = document.createElement("tr");
    for (const h of ["parameter", "in", "type", "", "meaning"]) head.append(node("th", h));
    table.append(head, ...rows);
    return table;
  };
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const box = node("div", undefined, "op");
      const title = node("div");
      title.append(node("span", method.toUpperCase(), "method"), node("code", path));
      box.append(title);
      if (op.description) box.append(node("pre", op.description));
      const table = params(op);
      if (table) box.append(table);
      if (op.requestBody) box.append(node("p", `body: ${Object.keys(op.requestBody.content).join(", ")}`));
      box.append(node("p", `responses: ${Object.keys(op.responses || {}).join(", ")}`));
      main.append(box);
    }
  }
}

render();
