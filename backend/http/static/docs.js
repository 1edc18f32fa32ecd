// At /schema (backend/http/documents/api_pages.py), what CSS cannot fix in what Swagger UI renders, applied as it renders:
// its headings start at h3 right under the page's h1 (a level skipped for screen reader users), some of its
// controls have no accessible name, or one that does not contain the words shown, and its regions none.
const container = document.getElementById("swagger-container");
//: Controls Swagger UI leaves unnamed, and the name each gets.
const NAMES = [
  ["textarea.body-param__text", "Request body"],
  ["select.examples-select-element", "Example"],
  ["select.content-type", "Media type"],
  [".copy-to-clipboard button", "Copy to clipboard"],
  ["button.close-modal", "Close"],
];

function fix() {
  for (const heading of container.querySelectorAll("h3, h4, h5, h6")) {
    if (!heading.hasAttribute("aria-level")) heading.setAttribute("aria-level", String(Number(heading.tagName[1]) - 1));
  }
  for (const [selector, name] of NAMES) {
    for (const element of container.querySelectorAll(`${selector}:not([aria-label])`)) {
      if (!element.labels || element.labels.length === 0) element.setAttribute("aria-label", name);
    }
  }
  // A parameter's or a form body field's control is named after it, as its row shows beside it.
  const rows = "tr[data-param-name], tr[data-property-name]";
  for (const control of container.querySelectorAll(`:is(${rows}) :is(input, select, textarea)`)) {
    if (!control.hasAttribute("aria-label") && (!control.labels || control.labels.length === 0)) {
      const row = control.closest(rows);
      control.setAttribute("aria-label", row.dataset.paramName || row.dataset.propertyName);
    }
  }
  // Each open operation's responses table is a region: two open at once must not share one (empty) name.
  for (const region of container.querySelectorAll(".opblock [role=region]:not([aria-label])")) {
    const block = region.closest(".opblock");
    const method = block.querySelector(".opblock-summary-method")?.textContent ?? "";
    const path = block.querySelector(".opblock-summary-path")?.dataset.path ?? "";
    const what = region.classList.contains("live-responses-table") ? "Server response" : "Responses";
    region.setAttribute("aria-label", `${what} of ${method} ${path}`);
  }
  // A code sample wider than the page scrolls: keyboard users reach it with Tab, to scroll it with the arrows.
  for (const code of container.querySelectorAll(".highlight-code > .microlight:not([tabindex])")) {
    code.setAttribute("tabindex", "0");
  }
  // The credentials dialog's submit button says "Authorize" but is named "Apply credentials".
  for (const button of container.querySelectorAll("button.modal-btn.authorize[aria-label='Apply credentials']")) {
    button.setAttribute("aria-label", "Authorize: apply credentials");
  }
}

fix();
new MutationObserver(fix).observe(container, { childList: true, subtree: true, attributes: false });
