// The start form laid out by concern (lifecycle/form_layout.py sends the layout in
// window.templateArgs.gemini_form), and the current stage of a shaped run.
//
// Locust's React app owns the form, so this script never moves, disables or rewrites an input: it
// sets CSS order (the option list is a flex box), classes, titles and label text, and adds its own
// group headings. The form therefore submits exactly what it did before. Every pass is idempotent
// and runs again after React re-renders (a MutationObserver) and when the shape changes.
(function () {
  "use strict";
  var args = window.templateArgs || {};
  var layout = args.gemini_form;
  if (!layout) {
    return;
  }
  var extra = args.extra_options || {};
  var HIDDEN = "gemini-hidden";

  // The React app camel-cases option names for the inputs (and snake-cases them back on submit).
  function camel(dest) {
    return dest.replace(/_([a-z0-9])/g, function (_, c) {
      return c.toUpperCase();
    });
  }

  var destByName = {};
  Object.keys(extra).forEach(function (dest) {
    destByName[camel(dest)] = dest;
  });

  var groupOf = {};
  var orderOf = {};
  layout.groups.forEach(function (group, g) {
    group.options.forEach(function (dest, i) {
      groupOf[dest] = g;
      orderOf[dest] = g * 1000 + 10 + i;
    });
  });
  var otherIndex = layout.groups.findIndex(function (group) {
    return group.key === layout.other_group;
  });

  function labelFor(dest) {
    if (layout.labels[dest]) {
      return layout.labels[dest];
    }
    var words = dest.replace(/_/g, " ");
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  function setText(node, text) {
    if (node && node.nodeValue !== text) {
      node.nodeValue = text;
    }
  }

  function firstTextNode(element) {
    if (!element) {
      return null;
    }
    for (var child = element.firstChild; child; child = child.nextSibling) {
      if (child.nodeType === Node.TEXT_NODE) {
        return child;
      }
    }
    return null;
  }

  function toggle(element, hidden) {
    if (element && element.classList.contains(HIDDEN) !== hidden) {
      element.classList.toggle(HIDDEN, hidden);
    }
  }

  function heading(list, group, g) {
    var selector = ':scope > [data-gemini-group="' + group.key + '"]';
    var title = list.querySelector(selector);
    if (!title) {
      title = document.createElement("div");
      title.className = "gemini-group-title";
      title.setAttribute("data-gemini-group", group.key);
      title.setAttribute("role", "heading");
      title.setAttribute("aria-level", "3");
      title.textContent = group.title;
      title.style.order = String(g * 1000);
      list.appendChild(title);
    }
    return title;
  }

  // One option: its place, short label and the full help on hover.
  function arrangeField(control, dest) {
    var field = control.closest(".MuiFormControl-root");
    if (!field || !field.parentElement) {
      return null;
    }
    var g = dest in groupOf ? groupOf[dest] : otherIndex;
    var order = String(dest in orderOf ? orderOf[dest] : g * 1000 + 500);
    if (field.getAttribute("data-gemini-option") !== dest) {
      field.setAttribute("data-gemini-option", dest);
    }
    if (field.style.order !== order) {
      field.style.order = order;
    }
    var help = (extra[dest] && extra[dest].help_text) || "";
    if (help && field.title !== help) {
      field.title = help;
      control.title = help;
    }
    var label = labelFor(dest);
    setText(firstTextNode(field.querySelector("label")), label);
    // the outline's notch is sized by a hidden copy of the label
    var notch = field.querySelector("legend > span");
    var notchText = label + (control.required ? " *" : "");
    if (notch && notch.textContent !== notchText) {
      notch.textContent = notchText;
    }
    field.parentElement.classList.add("gemini-form-list");
    return { field: field, list: field.parentElement, group: g };
  }

  function chosenShape(form) {
    var select = form.querySelector('[name="' + camel(layout.shape_option) + '"]');
    return select ? String(select.value || layout.no_shape) : null;
  }

  var expanded = new WeakSet();

  // The options' accordion opens once per form: the groups are the form's main content here.
  function openOnce(list, form) {
    if (expanded.has(form)) {
      return;
    }
    expanded.add(form);
    var accordion = list.closest(".MuiAccordion-root");
    var summary = accordion && accordion.querySelector(".MuiAccordionSummary-root");
    if (summary && summary.getAttribute("aria-expanded") === "false") {
      summary.click();
    }
  }

  function arrangeForm(form) {
    var shape = chosenShape(form);
    var lists = new Map();
    form.querySelectorAll("input[name], select[name], textarea[name]").forEach(function (control) {
      var dest = destByName[control.name];
      if (!dest) {
        return;
      }
      var placed = arrangeField(control, dest);
      if (!placed) {
        return;
      }
      var appliesTo = layout.shapes[dest];
      var hidden = Boolean(appliesTo) && (shape === null || appliesTo.indexOf(shape) < 0);
      toggle(placed.field, hidden);
      if (!lists.has(placed.list)) {
        lists.set(placed.list, new Set());
      }
      if (!hidden) {
        lists.get(placed.list).add(placed.group);
      }
    });
    lists.forEach(function (shown, list) {
      layout.groups.forEach(function (group, g) {
        var title = list.querySelector(':scope > [data-gemini-group="' + group.key + '"]');
        if (shown.has(g)) {
          title = heading(list, group, g);
        }
        toggle(title, !shown.has(g));
      });
      openOnce(list, form);
    });
    if (shape !== null) {
      // Like stock Locust with a LoadTestShape: the shape sets the users, so -u and -r are not asked.
      layout.common_fields.forEach(function (dest) {
        var control = form.querySelector('[name="' + camel(dest) + '"]');
        var field = control && control.closest(".MuiFormControl-root");
        toggle(field, shape !== layout.no_shape);
      });
    }
  }

  function arrange() {
    document.querySelectorAll("form").forEach(arrangeForm);
  }

  var scheduled = false;
  function schedule() {
    if (!scheduled) {
      scheduled = true;
      window.requestAnimationFrame(function () {
        scheduled = false;
        arrange();
      });
    }
  }

  // The stage of a shaped run, in a small status element; absent outside one.
  function showStage(status) {
    var box = document.getElementById("gemini-stage");
    if (!status.stage) {
      if (box) {
        box.remove();
      }
      return;
    }
    if (!box) {
      box = document.createElement("div");
      box.id = "gemini-stage";
      box.setAttribute("role", "status");
      document.body.appendChild(box);
    }
    var text = "Stage: " + status.stage + (status.shape ? " (" + status.shape + ")" : "");
    if (box.textContent !== text) {
      box.textContent = text;
    }
  }

  function pollStage() {
    fetch(layout.stage_url, { credentials: "same-origin", cache: "no-store" })
      .then(function (reply) {
        return reply.ok ? reply.json() : { stage: "" };
      })
      .then(showStage)
      .catch(function () {
        showStage({ stage: "" });
      })
      .finally(function () {
        window.setTimeout(pollStage, 1000);
      });
  }

  function start() {
    arrange();
    new MutationObserver(schedule).observe(document.body, { childList: true, subtree: true });
    document.addEventListener("change", schedule, true);
    pollStage();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
