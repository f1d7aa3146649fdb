/* test_pml_src.c - <module src="..."> reads files inside the root folder only.
 *
 * A fresh temporary tree (below) holds files, links that stay inside the root
 * and links that lead out of it; each case checks the text read or the
 * refusal, its status and its position in the schema.
 *   T/outside.txt
 *   T/root/a.txt, sub/b.txt, empty.txt, big.txt (20 bytes), bad.txt (not UTF-8)
 *   T/root/link_in -> a.txt, link_out -> ../outside.txt, dir_out -> ..
 *   T/root/schema.xml, fifo (a named pipe: refused at once, never read; alarm()
 *   turns a hang into a failure), fifo.xml (a named pipe as the schema file) */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "pml/pml.h"
#include "pml/src.h"

static char T[256], ROOT[300];

static void put(const char *rel, const char *data, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", T, rel);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(data, 1, n, f) == n);
    fclose(f);
}

static bool make_tree(void) {
    snprintf(T, sizeof T, "/tmp/pc_pml_src_XXXXXX");
    if (!mkdtemp(T)) return false;
    snprintf(ROOT, sizeof ROOT, "%s/root", T);
    char p[512];
    if (mkdir(ROOT, 0700) != 0) return false;
    snprintf(p, sizeof p, "%s/sub", ROOT);
    if (mkdir(p, 0700) != 0) return false;
    put("outside.txt", "secret\n", 7);
    put("root/a.txt", "Alpha text\n", 11);
    put("root/sub/b.txt", "  Beta \r\n ", 10);
    put("root/empty.txt", "", 0);
    put("root/big.txt", "01234567890123456789", 20);
    put("root/bad.txt", "ok \xC3\x28", 5);
    put("root/schema.xml", "<schema name=\"s\"><module name=\"m\" src=\"a.txt\"/></schema>", 56);
    snprintf(p, sizeof p, "%s/link_in", ROOT);
    if (symlink("a.txt", p) != 0) return false;
    snprintf(p, sizeof p, "%s/link_out", ROOT);
    if (symlink("../outside.txt", p) != 0) return false;
    snprintf(p, sizeof p, "%s/fifo", ROOT);
    if (mkfifo(p, 0600) != 0) return false;
    snprintf(p, sizeof p, "%s/fifo.xml", ROOT);
    if (mkfifo(p, 0600) != 0) return false;
    snprintf(p, sizeof p, "%s/dir_out", ROOT);
    return symlink("..", p) == 0;
}

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "test_pml_src: reading a FIFO blocked (hang)\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(1);
}

static void remove_tree(void) {
    static const char *const files[] = {"root/a.txt", "root/sub/b.txt", "root/empty.txt", "root/big.txt",
                                        "root/bad.txt", "root/schema.xml", "root/link_in", "root/link_out",
                                        "root/dir_out", "root/fifo", "root/fifo.xml", "outside.txt"};
    char p[512];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(p, sizeof p, "%s/%s", T, files[i]);
        unlink(p);
    }
    snprintf(p, sizeof p, "%s/root/sub", T);
    rmdir(p);
    rmdir(ROOT);
    rmdir(T);
}

/* Parses <schema name="s"><module name="m" src="SRC"/></schema> with the root;
 * the module is at line 1, column 18. */
static pc_status parse_src(const char *src, pc_pml_doc **d, pc_error *e) {
    char s[512];
    snprintf(s, sizeof s, "<schema name=\"s\"><module name=\"m\" src=\"%s\"/></schema>", src);
    pc_pml_options o = {.src_root = ROOT, .max_src_bytes = 16};
    return pc_pml_parse_schema(s, strlen(s), "t.xml", &o, d, e);
}

static void accepts(const char *src, const char *raw, const char *text, int line) {
    pc_pml_doc *d = NULL;
    pc_error e = {0};
    pc_status st = parse_src(src, &d, &e);
    CHECK_MSG(st == PC_OK, "line %d: %s", line, e.msg);
    if (st != PC_OK) return;
    const pc_pml_node *m = pc_pml_find_module(d->root, "m");
    if (!raw) {
        CHECK_MSG(m && m->n_children == 0, "line %d: an empty file gives no text", line);
    } else {
        const pc_pml_node *t = m && m->n_children ? m->children[0] : NULL;
        CHECK_MSG(t && t->from_src && strcmp(t->raw, raw) == 0 && strcmp(t->text, text) == 0, "line %d", line);
        CHECK_MSG(t && t->src_path[0] == '/' && t->line == 1 && t->col == 18, "line %d", line);
    }
    pc_pml_doc_free(d);
}

static void refuses(const char *src, pc_status code, const char *what, int line) {
    pc_pml_doc *d = NULL;
    pc_error e = {0};
    pc_status st = parse_src(src, &d, &e);
    CHECK_MSG(st == code && d == NULL, "line %d: status %d, want %d: %s", line, st, code, e.msg);
    CHECK_MSG(strstr(e.msg, "t.xml:1:18: module \"m\": ") == e.msg, "line %d: %s", line, e.msg);
    CHECK_MSG(strstr(e.msg, what) != NULL, "line %d: want \"%s\" in \"%s\"", line, what, e.msg);
}

static void test_src(void) {
    accepts("a.txt", "Alpha text\n", "Alpha text ", __LINE__);
    accepts("sub/b.txt", "  Beta \n ", " Beta ", __LINE__); /* \r\n read as \n, as Python's read_text does */
    accepts("./sub/../a.txt", "Alpha text\n", "Alpha text ", __LINE__);
    accepts("link_in", "Alpha text\n", "Alpha text ", __LINE__);
    accepts("empty.txt", NULL, NULL, __LINE__);

    refuses("../outside.txt", PC_ERR_INVALID, "climbs out of the schema folder", __LINE__);
    refuses("sub/../../outside.txt", PC_ERR_INVALID, "climbs out", __LINE__);
    refuses("/etc/hostname", PC_ERR_INVALID, "is an absolute path", __LINE__);
    refuses("link_out", PC_ERR_INVALID, "outside the schema folder", __LINE__);
    refuses("dir_out/outside.txt", PC_ERR_INVALID, "outside the schema folder", __LINE__);
    refuses("missing.txt", PC_ERR_NOT_FOUND, "No such file", __LINE__);
    refuses("big.txt", PC_ERR_RANGE, "is 20 bytes, over the limit of 16 bytes", __LINE__);
    refuses("bad.txt", PC_ERR_FORMAT, "byte 3 is not UTF-8", __LINE__);
    refuses("sub", PC_ERR_INVALID, "not a regular file", __LINE__);
    alarm(10);
    refuses("fifo", PC_ERR_INVALID, "is a FIFO, not a regular file", __LINE__);
    alarm(0);
    refuses("", PC_ERR_INVALID, "src is empty", __LINE__);
}

static void test_roots(void) {
    /* from a file, src resolves against the file's folder */
    char path[512];
    snprintf(path, sizeof path, "%s/schema.xml", ROOT);
    pc_pml_doc *d = NULL;
    pc_error e = {0};
    CHECK_MSG(pc_pml_parse_schema_file(path, NULL, &d, &e) == PC_OK, "%s", e.msg);
    const pc_pml_node *m = d ? pc_pml_find_module(d->root, "m") : NULL;
    CHECK(m && m->n_children == 1 && strcmp(m->children[0]->raw, "Alpha text\n") == 0);
    pc_pml_doc_free(d);

    /* a missing schema file */
    snprintf(path, sizeof path, "%s/none.xml", ROOT);
    CHECK(pc_pml_parse_schema_file(path, NULL, &d, &e) == PC_ERR_NOT_FOUND && d == NULL);
    CHECK(strstr(e.msg, "none.xml") != NULL);

    /* a named pipe as the schema file is refused, not waited on */
    snprintf(path, sizeof path, "%s/fifo.xml", ROOT);
    alarm(10);
    CHECK(pc_pml_parse_schema_file(path, NULL, &d, &e) == PC_ERR_INVALID && d == NULL);
    alarm(0);
    CHECK_MSG(strstr(e.msg, "fifo.xml: is a FIFO"), "%s", e.msg);

    /* a buffer with no root cannot use src */
    const char *s = "<schema name=\"s\">\n  <module name=\"m\" src=\"a.txt\"/></schema>";
    CHECK(pc_pml_parse_schema(s, strlen(s), "t.xml", NULL, &d, &e) == PC_ERR_INVALID && d == NULL);
    CHECK_MSG(strstr(e.msg, "t.xml:2:3: module \"m\": src=\"a.txt\" needs a folder") == e.msg, "%s", e.msg);

    /* the reader on its own */
    char *text = NULL, *resolved = NULL;
    size_t len = 0;
    CHECK(pc_pml_src_read(ROOT, "sub/b.txt", 100, &text, &len, &resolved, &e) == PC_OK);
    CHECK(text && len == 9 && memcmp(text, "  Beta \n ", 9) == 0 && text[9] == '\0');
    CHECK(resolved && strstr(resolved, "/root/sub/b.txt") != NULL);
    free(text);
    free(resolved);
    CHECK(pc_pml_src_read(ROOT, "link_out", 100, &text, &len, &resolved, &e) == PC_ERR_INVALID);
    CHECK(text == NULL && resolved == NULL);
}

int main(void) {
    if (!make_tree()) {
        fprintf(stderr, "cannot build the temporary tree under /tmp\n");
        return CHECK_SKIP;
    }
    signal(SIGALRM, on_alarm);
    test_src();
    test_roots();
    remove_tree();
    return check_report();
}
