// A modal confirmation (<dialog>): resolves to the reason typed (or "") when
// confirmed, to null when dismissed. Focus returns to where it was.

import { h } from "./dom.js";

export function confirmDialog({ title, text, confirm, danger = false, reason = false }) {
  return new Promise((resolve) => {
    const before = document.activeElement;
    const input = reason
      ? h("input#dialog-reason", { type: "text", name: "reason", maxLength: 500 })
      : null;
    const dialog = h(
      "dialog.confirm",
      { "aria-labelledby": "dialog-title" },
      h(
        "form",
        { method: "dialog" },
        h("h2#dialog-title", title),
        h("p", text),
        input ? [h("label", { htmlFor: "dialog-reason" }, "Reason (optional)"), input] : null,
        h(
          "div.buttons",
          h("button.secondary", { type: "submit", value: "cancel" }, "Back"),
          h(`button${danger ? ".danger" : ""}`, { type: "submit", value: "ok" }, confirm),
        ),
      ),
    );
    dialog.addEventListener("close", () => {
      const ok = dialog.returnValue === "ok";
      const value = input ? input.value.trim() : "";
      dialog.remove();
      if (before && before.focus) before.focus();
      resolve(ok ? value : null);
    });
    document.body.append(dialog);
    dialog.showModal();
    (input || dialog.querySelector("button[value=ok]")).focus();
  });
}
