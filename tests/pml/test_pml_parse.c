/* test_pml_parse.c - PML documents that must parse, and the trees they give.
 *
 * Truth: the prototype's example schemas (counts taken by reading the files),
 * and hand-written schemas and prompts whose trees, texts and positions are
 * worked out by hand in the comments beside each check. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "pml/pml.h"

static pc_pml_doc *schema_str(const char *s, const pc_pml_options *o) {
    pc_pml_doc *d = NULL;
    pc_error e = {0};
    if (pc_pml_parse_schema(s, strlen(s), "t.xml", o, &d, &e) != PC_OK) fprintf(stderr, "unexpected: %s\n", e.msg);
    return d;
}

static pc_pml_doc *prompt_str(const char *s) {
    pc_pml_doc *d = NULL;
    pc_error e = {0};
    if (pc_pml_parse_prompt(s, strlen(s), "req", NULL, &d, &e) != PC_OK) fprintf(stderr, "unexpected: %s\n", e.msg);
    return d;
}

typedef struct counts { int kinds[8]; int roles_self_closing; } counts;

static pc_pml_walk_action count_visit(const pc_pml_node *n, uint32_t depth, void *user) {
    (void)depth;
    counts *c = user;
    c->kinds[n->kind]++;
    c->roles_self_closing += n->kind == PC_PML_ROLE && n->self_closing;
    return PC_PML_WALK_CONTINUE;
}

static counts count(const pc_pml_doc *d) {
    counts c = {{0}, 0};
    pc_pml_walk(d->root, count_visit, &c);
    return c;
}

static const pc_pml_node *child(const pc_pml_node *n, size_t i) {
    return n && i < n->n_children ? n->children[i] : NULL;
}

static pc_pml_doc *example(const char *file, bool lenient, pc_error *e) {
    char path[1024];
    snprintf(path, sizeof path, "%s/pml-examples/%s", PC_SHARED_DIR, file);
    pc_pml_options o = {.lenient = lenient};
    pc_pml_doc *d = NULL;
    if (pc_pml_parse_schema_file(path, &o, &d, e) != PC_OK) fprintf(stderr, "%s\n", e->msg);
    return d;
}

/* The compatibility suite: the prototype's schemas, strict mode. */
static void test_examples(void) {
    pc_error e;
    pc_pml_doc *d = example("mbti.xml", false, &e);
    CHECK(d != NULL);
    if (d) {
        CHECK_STR(d->root->name, "mbti");
        counts c = count(d);
        CHECK_EQ_INT(c.kinds[PC_PML_UNION], 4);
        CHECK_EQ_INT(c.kinds[PC_PML_MODULE], 12);
        CHECK_EQ_INT(d->n_modules, 12);
        CHECK_EQ_INT(c.kinds[PC_PML_ROLE], 3);
        CHECK_EQ_INT(d->n_warnings, 0);
        /* <module name="EI"> </module>: one space, kept as the prototype did */
        const pc_pml_node *ei = pc_pml_find_module(d->root, "EI");
        CHECK(ei && ei->n_children == 1 && strcmp(ei->children[0]->text, " ") == 0);
        CHECK(ei && ei->line == 6 && ei->col == 13);
        const pc_pml_node *u = ei ? ei->parent : NULL;
        CHECK(u && u->kind == PC_PML_UNION && strcmp(u->scaffold, "EI") == 0 && u->n_children == 3);
    }
    pc_pml_doc_free(d);

    d = example("travel.xml", false, &e);
    CHECK(d != NULL);
    if (d) {
        counts c = count(d);
        CHECK_EQ_INT(c.kinds[PC_PML_MODULE], 11); /* travel-plan, domestic, overseas, 8 places */
        CHECK_EQ_INT(c.kinds[PC_PML_PARAMETER], 2);
        const pc_pml_node *plan = pc_pml_find_module(d->root, "travel-plan");
        const pc_pml_node *dur = pc_pml_find_parameter(plan, "duration");
        CHECK(dur && dur->length == 5 && dur->line == 14);
        const pc_pml_node *dom = pc_pml_find_module(plan, "domestic");
        const pc_pml_node *city = pc_pml_find_parameter(dom, "city");
        CHECK(city && city->length == 10 && city->scaffold == NULL);
        /* "...for the duration of<parameter": no space before the tag, so none added */
        const pc_pml_node *t0 = child(plan, 0);
        CHECK(t0 && t0->kind == PC_PML_TEXT && t0->text_len > 0 &&
              strcmp(t0->text, " I'm gearing up for a memorable escape for the duration of") == 0);
        CHECK(pc_pml_find_module(pc_pml_find_module(plan, "overseas"), "tokyo") != NULL);
        CHECK(pc_pml_find_module(d->root, "tokyo") == NULL); /* nested scopes stay nested */
    }
    pc_pml_doc_free(d);

    d = example("code-bookstore.xml", false, &e);
    CHECK(d != NULL);
    if (d) {
        CHECK_EQ_INT(d->n_modules, 5);
        const pc_pml_node *m = pc_pml_find_module(d->root, "database.py");
        CHECK(m && m->n_children == 1);
        const pc_pml_node *t = child(m, 0);
        /* raw starts with the newline after the tag; compacted starts with one space */
        CHECK(t && strncmp(t->raw, "\nclass Database:\n", 17) == 0);
        CHECK(t && strncmp(t->text, " class Database:\n", 17) == 0);
        CHECK(t && t->text_len >= 2 && strcmp(t->text + t->text_len - 12, "return None ") == 0);
    }
    pc_pml_doc_free(d);

    d = example("persona.xml", false, &e);
    CHECK(d != NULL);
    if (d) {
        counts c = count(d);
        CHECK_EQ_INT(c.kinds[PC_PML_MODULE], 35);
        CHECK_EQ_INT(c.kinds[PC_PML_UNION], 6);
    }
    pc_pml_doc_free(d);
}

/* Raw '<' and '&' in code: strict refuses with a position, lenient escapes
 * and warns at each place, keeping the code text as written. */
static void test_lenient(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/pml/lenient_code.xml", PC_TEST_DATA);
    pc_pml_doc *d = NULL;
    pc_error e = {0};
    pc_status st = pc_pml_parse_schema_file(path, NULL, &d, &e);
    CHECK(st == PC_ERR_FORMAT && d == NULL);
    /* line 6 is "    return 0 <= p[0] < n ...": the '<' is column 14, libxml2 stops just after it */
    CHECK_MSG(strstr(e.msg, "lenient_code.xml:6:15: malformed XML") != NULL, "%s", e.msg);

    pc_pml_options o = {.lenient = true};
    st = pc_pml_parse_schema_file(path, &o, &d, &e);
    CHECK(st == PC_OK && d != NULL);
    if (!d) return;
    /* line 6: four '<'; line 9 "x<lo"; line 10 "&&" and "List<int>" */
    CHECK_EQ_INT(d->n_warnings, 8);
    if (d->n_warnings == 8) {
        CHECK(d->warnings[0].line == 6 && d->warnings[0].col == 14);
        CHECK(d->warnings[4].line == 9 && d->warnings[4].col == 9);
        CHECK(d->warnings[5].line == 10 && strstr(d->warnings[5].msg, "'&'") != NULL);
        CHECK(strstr(d->warnings[0].msg, "lenient_code.xml:6:14: lenient: escaped a raw '<'") != NULL);
    }
    const pc_pml_node *m = pc_pml_find_module(d->root, "grid.py");
    const pc_pml_node *t = child(m, 0);
    CHECK(t && strstr(t->raw, "    return 0 <= p[0] < n and 0 <= p[1] < n\n") != NULL);
    CHECK(t && strstr(t->raw, "    if x<lo: return lo\n") != NULL);
    CHECK(t && strstr(t->raw, "# a && b, List<int>\n") != NULL);
    /* positions after the escapes still refer to the original text */
    const pc_pml_node *user = child(d->root, 1);
    CHECK(user && user->kind == PC_PML_ROLE && user->line == 2 && user->col == 5);
    pc_pml_doc_free(d);
}

/* nested.xml, worked out by hand:
 * schema: " " system " " user " " assistant(self-closing) " " */
static void test_tree_shape(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/pml/srcdoc/nested.xml", PC_TEST_DATA);
    pc_pml_doc *d = NULL;
    pc_error e = {0};
    CHECK(pc_pml_parse_schema_file(path, NULL, &d, &e) == PC_OK);
    if (!d) { fprintf(stderr, "%s\n", e.msg); return; }
    const pc_pml_node *r = d->root;
    CHECK(r->kind == PC_PML_SCHEMA && strcmp(r->name, "nested") == 0 && r->parent == NULL);
    CHECK(r->line == 1 && r->col == 1);
    CHECK_EQ_INT(r->n_children, 7);
    const pc_pml_kind top[] = {PC_PML_TEXT, PC_PML_ROLE, PC_PML_TEXT, PC_PML_ROLE,
                               PC_PML_TEXT, PC_PML_ROLE, PC_PML_TEXT};
    for (size_t i = 0; i < 7 && i < r->n_children; i++) CHECK_EQ_INT(r->children[i]->kind, top[i]);
    const pc_pml_node *sys = child(r, 1), *user = child(r, 3), *asst = child(r, 5);
    CHECK(sys && sys->role == PC_PML_ROLE_SYSTEM && !sys->self_closing && sys->n_children == 1);
    CHECK(sys && strcmp(child(sys, 0)->text, "You plan trips.") == 0);
    CHECK(asst && asst->role == PC_PML_ROLE_ASSISTANT && asst->self_closing && asst->n_children == 0);
    CHECK(asst && asst->line == 18 && asst->col == 3);
    CHECK(child(r, 0) && strcmp(child(r, 0)->text, " ") == 0 && strcmp(child(r, 0)->raw, "\n  ") == 0);

    /* user: " " plan " " volatile " " */
    CHECK(user && user->n_children == 5);
    const pc_pml_node *plan = child(user, 1), *vol = child(user, 3);
    CHECK(plan && plan->kind == PC_PML_MODULE && strcmp(plan->name, "plan") == 0 && plan->cache);
    CHECK(plan && plan->line == 4 && plan->col == 5 && plan->parent == user);
    CHECK(vol && strcmp(vol->name, "volatile") == 0 && !vol->cache);
    CHECK(vol && strcmp(child(vol, 0)->text, "Fresh text.") == 0);

    /* plan: " I travel for " duration ". " union " " */
    CHECK(plan && plan->n_children == 5);
    const pc_pml_node *t0 = child(plan, 0), *dur = child(plan, 1), *t2 = child(plan, 2), *u = child(plan, 3);
    CHECK(t0 && strcmp(t0->text, " I travel for ") == 0 && t0->line == 4 && t0->col == 25);
    CHECK(dur && dur->kind == PC_PML_PARAMETER && dur->length == 5 && dur->line == 5 && dur->col == 20);
    CHECK(t2 && strcmp(t2->text, ". ") == 0);
    CHECK(u && u->kind == PC_PML_UNION && strcmp(u->scaffold, "domestic") == 0 && u->n_children == 2);
    const pc_pml_node *dom = child(u, 0), *ovs = child(u, 1);
    CHECK(dom && strcmp(dom->name, "domestic") == 0 && dom->n_children == 3);
    const pc_pml_node *city = child(dom, 1);
    CHECK(city && city->length == 10 && strcmp(city->scaffold, "a city") == 0);
    CHECK(child(dom, 0) && strcmp(child(dom, 0)->text, "I stay in ") == 0);
    CHECK(child(dom, 2) && strcmp(child(dom, 2)->text, ".") == 0);

    /* overseas: "I go abroad. " union(tokyo, rome) " " */
    CHECK(ovs && ovs->n_children == 3 && strcmp(child(ovs, 0)->text, "I go abroad. ") == 0);
    const pc_pml_node *u2 = child(ovs, 1);
    CHECK(u2 && u2->kind == PC_PML_UNION && u2->scaffold == NULL && u2->n_children == 2);
    const pc_pml_node *rome = child(u2, 1);
    CHECK(rome && strcmp(rome->name, "rome") == 0 && strcmp(rome->src, "docs/rome.txt") == 0);
    const pc_pml_node *rt = child(rome, 0);
    CHECK(rome && rome->n_children == 1 && rt && rt->from_src);
    /* the file is "Rome, the eternal city.\r\nSee the Forum.\n\n" */
    CHECK(rt && strcmp(rt->raw, "Rome, the eternal city.\nSee the Forum.\n\n") == 0);
    CHECK(rt && strcmp(rt->text, "Rome, the eternal city.\nSee the Forum. ") == 0);
    CHECK(rt && rt->src_path && strstr(rt->src_path, "/srcdoc/docs/rome.txt") != NULL);
    CHECK(rt && rt->line == rome->line && rt->col == rome->col);

    /* look-ups: through roles and unions, never into nested modules */
    CHECK(pc_pml_find_module(r, "plan") == plan);
    CHECK(pc_pml_find_module(r, "volatile") == vol);
    CHECK(pc_pml_find_module(r, "domestic") == NULL);
    CHECK(pc_pml_find_module(plan, "overseas") == ovs);
    CHECK(pc_pml_find_module(ovs, "rome") == rome);
    CHECK(pc_pml_find_parameter(plan, "duration") == dur);
    CHECK(pc_pml_find_parameter(plan, "city") == NULL);
    CHECK(pc_pml_find_parameter(dom, "city") == city);
    CHECK(strcmp(pc_pml_attr_get(city, "scaffold"), "a city") == 0 && pc_pml_attr_get(city, "nope") == NULL);
    CHECK_EQ_INT(d->n_modules, 6);
    pc_pml_doc_free(d);
}

typedef struct walk_log { int visited; const char *stop_at; const char *skip; } walk_log;

static pc_pml_walk_action log_visit(const pc_pml_node *n, uint32_t depth, void *user) {
    walk_log *w = user;
    w->visited++;
    (void)depth;
    if (n->name && w->stop_at && strcmp(n->name, w->stop_at) == 0) return PC_PML_WALK_STOP;
    if (n->name && w->skip && strcmp(n->name, w->skip) == 0) return PC_PML_WALK_SKIP;
    return PC_PML_WALK_CONTINUE;
}

static void test_walk(void) {
    /* schema, a, (a's text), b, c(in b) -> pre-order: schema a text b c */
    pc_pml_doc *d = schema_str("<schema name=\"w\"><module name=\"a\">x</module><module name=\"b\">"
                               "<module name=\"c\"/></module></schema>", NULL);
    CHECK(d != NULL);
    if (!d) return;
    walk_log w = {0, NULL, NULL};
    CHECK(pc_pml_walk(d->root, log_visit, &w) == true);
    CHECK_EQ_INT(w.visited, 5);
    w = (walk_log){0, "a", NULL};
    CHECK(pc_pml_walk(d->root, log_visit, &w) == false);
    CHECK_EQ_INT(w.visited, 2);
    w = (walk_log){0, NULL, "b"};
    CHECK(pc_pml_walk(d->root, log_visit, &w) == true);
    CHECK_EQ_INT(w.visited, 4);
    pc_pml_doc_free(d);
}

static void test_prompt(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/pml/prompt_travel.xml", PC_TEST_DATA);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (!f) return;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    pc_pml_doc *d = NULL;
    pc_error e = {0};
    CHECK(pc_pml_parse_prompt(buf, n, "prompt_travel.xml", NULL, &d, &e) == PC_OK);
    if (!d) { fprintf(stderr, "%s\n", e.msg); return; }
    const pc_pml_node *r = d->root;
    CHECK(r->kind == PC_PML_PROMPT && strcmp(r->name, "nested") == 0);
    /* whitespace between markup is dropped in prompts: plan user assistant user */
    CHECK_EQ_INT(r->n_children, 4);
    const pc_pml_node *plan = child(r, 0);
    CHECK(plan && plan->kind == PC_PML_REF && strcmp(plan->name, "plan") == 0 && plan->line == 2 && plan->col == 3);
    CHECK(plan && plan->n_attrs == 1 && strcmp(pc_pml_attr_get(plan, "duration"), "3 days") == 0);
    const pc_pml_node *ovs = child(plan, 0);
    CHECK(plan && plan->n_children == 1 && ovs && strcmp(ovs->name, "overseas") == 0);
    CHECK(ovs && ovs->n_children == 1 && strcmp(child(ovs, 0)->name, "tokyo") == 0 && child(ovs, 0)->col == 15);
    CHECK(pc_pml_find_module(r, "plan") == plan && pc_pml_find_module(plan, "overseas") == ovs);
    const pc_pml_node *u1 = child(r, 1), *a = child(r, 2), *u2 = child(r, 3);
    CHECK(u1 && u1->role == PC_PML_ROLE_USER && strcmp(child(u1, 0)->text, "Plan my first day.") == 0);
    CHECK(a && a->role == PC_PML_ROLE_ASSISTANT && strcmp(child(a, 0)->text, "Here it is ...") == 0);
    CHECK(u2 && u2->role == PC_PML_ROLE_USER && strcmp(child(u2, 0)->text, "And the second day?") == 0);
    CHECK_EQ_INT(d->n_modules, 3);
    pc_pml_doc_free(d);

    /* a text-only prompt without a schema, its text compacted */
    d = prompt_str("<prompt>\n  Hello there.\n</prompt>");
    CHECK(d && d->root->name == NULL && d->root->n_children == 1);
    CHECK(d && strcmp(child(d->root, 0)->text, " Hello there. ") == 0);
    pc_pml_doc_free(d);
}

/* XML details: references decode, CDATA is text, comments and PIs split
 * pieces, a BOM and CRLF do not move columns, an encoding declaration does
 * not re-decode the UTF-8 text. */
static void test_xml_details(void) {
    pc_pml_doc *d = schema_str("<schema name=\"x\"><module name=\"m\"><parameter name=\"p\" length=\" 7 \" "
                               "scaffold=\"a &amp; b &#38; c &amp;#38; &lt;d&gt; &#x41;\"/></module></schema>", NULL);
    const pc_pml_node *p = d ? pc_pml_find_parameter(pc_pml_find_module(d->root, "m"), "p") : NULL;
    CHECK(p && p->length == 7);
    CHECK(p && strcmp(p->scaffold, "a & b & c &#38; <d> A") == 0);
    pc_pml_doc_free(d);

    const char *s = "\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\r\n"
                    "<schema name=\"x\"><!-- note -->caf\xC3\xA9 <![CDATA[<raw> & more]]> &lt;ok&gt;"
                    "<?pi data?>tail</schema>";
    d = schema_str(s, NULL);
    CHECK(d != NULL);
    if (d) {
        CHECK(d->root->line == 2 && d->root->col == 1);
        CHECK_EQ_INT(d->root->n_children, 2);
        const pc_pml_node *t = child(d->root, 0);
        /* "<schema name="x">" is 17 columns and "<!-- note -->" 13: the text starts at column 31 */
        CHECK(t && strcmp(t->raw, "caf\xC3\xA9 <raw> & more <ok>") == 0 && t->line == 2 && t->col == 31);
        CHECK(child(d->root, 1) && strcmp(child(d->root, 1)->text, "tail") == 0);
    }
    pc_pml_doc_free(d);

    /* columns count code points: after the 17 columns of the tag and "é" (2 bytes), the module is at 19 */
    d = schema_str("<schema name=\"x\">\xC3\xA9<module name=\"m\"/></schema>", NULL);
    CHECK(d && child(d->root, 1) && child(d->root, 1)->col == 19);
    pc_pml_doc_free(d);

    /* <system></system> and <system/> differ only in self_closing */
    d = schema_str("<schema name=\"x\"><system></system><system/><user>Hi</user></schema>", NULL);
    counts c = d ? count(d) : (counts){{0}, 0};
    CHECK(d && c.kinds[PC_PML_ROLE] == 3 && c.roles_self_closing == 1);
    CHECK(d && !child(d->root, 0)->self_closing && child(d->root, 1)->self_closing);
    pc_pml_doc_free(d);

    /* names follow the prototype's rule, dots included; a role may hold modules */
    d = schema_str("<schema name=\"s.v-2\"><user><module name=\"_unit.py\">x</module></user></schema>", NULL);
    CHECK(d && pc_pml_find_module(d->root, "_unit.py") != NULL);
    pc_pml_doc_free(d);
    /* names are XML names (PML.md): letters of any script, as in element names */
    d = schema_str("<schema name=\"voyage\"><module name=\"caf\xC3\xA9\">x</module><module name=\"\xE6\x9D\xB1\xE4\xBA\xAC\">y"
                   "</module><module name=\"\xC3\xA9t\xC3\xA9\xC2\xB7" "b\">z</module></schema>", NULL);
    CHECK(d && pc_pml_find_module(d->root, "caf\xC3\xA9") && pc_pml_find_module(d->root, "\xE6\x9D\xB1\xE4\xBA\xAC") &&
          pc_pml_find_module(d->root, "\xC3\xA9t\xC3\xA9\xC2\xB7" "b"));
    pc_pml_doc_free(d);
    d = prompt_str("<prompt schema=\"voyage\"><caf\xC3\xA9 \xC3\xA9t\xC3\xA9=\"x\"/><\xE6\x9D\xB1\xE4\xBA\xAC/></prompt>");
    CHECK(d && pc_pml_find_module(d->root, "caf\xC3\xA9") && pc_pml_find_module(d->root, "\xE6\x9D\xB1\xE4\xBA\xAC"));
    pc_pml_doc_free(d);
}

static void test_limits_at_edge(void) {
    /* exactly max_depth levels and exactly max_modules modules are accepted */
    pc_pml_options o = {.max_depth = 4, .max_modules = 3};
    pc_pml_doc *d = schema_str("<schema name=\"x\"><module name=\"a\"><module name=\"b\"><module name=\"c\"/>"
                               "</module></module></schema>", &o);
    CHECK(d && d->n_modules == 3);
    pc_pml_doc_free(d);
    /* a document of exactly max_bytes */
    const char *s = "<schema name=\"x\"/>";
    o = (pc_pml_options){.max_bytes = strlen(s)};
    d = schema_str(s, &o);
    CHECK(d != NULL && d->root->n_children == 0);
    pc_pml_doc_free(d);
}

int main(void) {
    test_examples();
    test_lenient();
    test_tree_shape();
    test_walk();
    test_prompt();
    test_xml_details();
    test_limits_at_edge();
    return check_report();
}
