// Refusals the user must act on (a sample refused, a name taken, a text too long, a launch blocked), said beside the
// control that caused them rather than in the bar at the top of the page: where the eye and the focus already are.
// Each is a role="alert" paragraph after `anchor`, tied to `control` (aria-describedby, aria-invalid) until the page
// clears it, which it does, as it clears the bar, when the next action starts.

const shown = new Map(); // control → { note, invalid (what aria-invalid was before) }

/** Say `message` beside `control`, after `anchor` (default: the control's row, or the control itself). */
export function sayBeside(control, message, anchor = control.closest(".row") || control) {
  clearBeside(control);
  const note = document.createElement("p");
  note.className = "beside";
  note.id = `${control.id || "control"}-problem-${shown.size}`;
  note.setAttribute("role", "alert");
  note.textContent = message;
  anchor.after(note);
  shown.set(control, { note, invalid: control.getAttribute("aria-invalid") });
  control.setAttribute("aria-describedby", [control.getAttribute("aria-describedby"), note.id].filter(Boolean).join(" "));
  control.setAttribute("aria-invalid", "true");
}

/** Take back what was said beside `control`, or beside every control when none is given. */
export function clearBeside(control = null) {
  for (const [shownFor, { note, invalid }] of [...shown]) {
    if (control && shownFor !== control) continue;
    note.remove();
    shown.delete(shownFor);
    const rest = (shownFor.getAttribute("aria-describedby") || "").split(" ").filter((id) => id && id !== note.id);
    if (rest.length) shownFor.setAttribute("aria-describedby", rest.join(" "));
    else shownFor.removeAttribute("aria-describedby");
    if (invalid === null) shownFor.removeAttribute("aria-invalid");
    else shownFor.setAttribute("aria-invalid", invalid);
  }
}
