"""The snapshot sanitiser's XSS corpus, checked by a real browser's parser (Chromium's DOMParser).

Mutation XSS lives where html.parser and browsers disagree, so the unit tests' own checker is not
enough: here Chromium parses every vector and every rewritten output.
"""

from tests.unit.test_html_rewrite import XSS_CORPUS, rewrite

BROWSER_POLICY = r"""
(documents) => documents.map((markup) => {
  const problems = [];
  const walk = (root) => {
    for (const element of root.querySelectorAll("*")) {
      if (["script", "base", "portal"].includes(element.localName)) {
        problems.push(element.localName);
      }
      for (const attribute of element.attributes) {
        const flat = attribute.value.replace(/[\x00-\x20\x7f]/g, "").toLowerCase();
        if (attribute.name.toLowerCase().startsWith("on")
            || /^(javascript:|vbscript:|data:text\/html)/.test(flat)) {
          problems.push(element.localName + " " + attribute.name + "=" + attribute.value);
        }
      }
      if (element instanceof HTMLTemplateElement) walk(element.content);
    }
  };
  walk(new DOMParser().parseFromString(markup, "text/html"));
  return problems;
})
"""


def test_xss_corpus_is_inert_in_chromium_too(browser):
    outputs = [rewrite(vector) for vector, _ in XSS_CORPUS]
    page = browser.new_page()
    try:
        found_in_vectors = page.evaluate(BROWSER_POLICY, [vector for vector, _ in XSS_CORPUS])
        found_in_outputs = page.evaluate(BROWSER_POLICY, outputs)
    finally:
        page.close()
    assert sum(map(bool, found_in_vectors)) >= 60  # the browser check has teeth
    assert {output: found for output, found in zip(outputs, found_in_outputs) if found} == {}
