// Renders the OpenAPI document as a plain list of operations grouped by tag.
(async () => {
  const root = document.getElementById("api");
  const doc = await (await fetch("/openapi.json")).json();
  const byTag = {};
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags || ["other"])[0];
      (byTag[tag] ||= []).push({ path, method, op });
    }
  }
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const resolve = (schema) => {
    if (schema && schema.$ref) return doc.components.schemas[schema.$ref.split("/").pop()];
    return schema;
  };
  root.textContent = "";
  for (const [tag, ops] of Object.entries(byTag)) {
    root.appendChild(el("h2", null, tag));
    for (const { path, method, op } of ops) {
      const box = el("div", "op");
      box.appendChild(el("span", "m", method.toUpperCase()));
      box.appendChild(el("span", "path", path));
      box.appendChild(el("div", null, op.summary || ""));
      const schema = resolve(op.requestBody?.content?.["application/json"]?.schema);
      if (schema) box.appendChild(el("pre", null, "body: " + JSON.stringify(schema.properties || schema, null, 1)));
      const codes = Object.entries(op.responses || {}).map(([c, r]) => `${c} ${r.description}`);
      box.appendChild(el("div", "r", codes.join(" · ")));
      root.appendChild(box);
    }
  }
})();
