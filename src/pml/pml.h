/* pml.h - the PML parser: PML text (schema or prompt) to a syntax tree.
 *
 * PML is XML (see shared/PML.md). This layer turns a document into a tree of
 * pc_pml_node and checks every structural rule that needs no tokenizer: the
 * later schema layer lays the tree out (positions, tokens) and binds prompts.
 *
 * Ownership: pc_pml_parse_* hand the caller a pc_pml_doc that owns every
 * node, string and warning reachable from it (one arena); pc_pml_doc_free
 * releases all of it and is safe on NULL. Nothing in the tree is ever
 * modified after parsing, so a doc may be read from several threads.
 *
 * Threads: parsing touches no shared state of ours; libxml2 wants
 * xmlInitParser() called once (e.g. in main) before parsers run on several
 * threads at once.
 *
 * Positions: line and col are 1-based; col counts Unicode code points of the
 * original document (before lenient escaping), tabs count as one.
 *
 * Whitespace (the prototype's rule, promptcache/prompt.py
 * compact_surrounding_spaces): each text piece keeps its inner text as is,
 * and a leading or trailing run of whitespace (Python's str \s: ASCII space,
 * \t \n \v \f \r, \x1c-\x1f, U+0085, U+00A0, U+1680, U+2000-200A, U+2028,
 * U+2029, U+202F, U+205F, U+3000) becomes one space. A piece that is only
 * whitespace becomes " ". TEXT nodes carry both `text` (compacted) and `raw`
 * (the character data as parsed) - see the TEXT notes below.
 *
 * Chat tags (the schema layer applies these rules): <system>, <user> and
 * <assistant> become exactly the chat template's markers, as the template
 * renders them (Llama-2 and Gemma fold a leading system message into the
 * first user turn). The whitespace rule applies to the text between markers,
 * never to a marker, and where text meets a marker its whitespace run goes
 * entirely (the marker brings its own newlines): `<user>\n  Hi.\n</user>` is
 * the template's user turn around "Hi.". Only markers become control tokens;
 * text that spells one ("&lt;|im_start|&gt;") stays text. A prompt whose
 * conversation ends in a closed user turn gets the template's generation
 * prompt; one that ends in an <assistant> element leaves that turn open (no
 * end marker, no generation prompt), so generation continues the answer.
 * <system/> (self-closing) stands for the template's default system message
 * where the model's own template has one (SmolLM2's ChatML does), else for
 * nothing. The chat tags inside a union's members must leave the
 * conversation in the same turn.
 */
#ifndef PC_PML_H
#define PC_PML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pcache.h"

/* Defaults of pc_pml_options (a zero field means "the default"). */
#define PC_PML_DEFAULT_MAX_BYTES ((size_t)16 << 20)     /* document size */
#define PC_PML_DEFAULT_MAX_DEPTH 64u                    /* element nesting, root = 1 */
#define PC_PML_DEFAULT_MAX_MODULES 10000u               /* modules (schema) or references (prompt) */
#define PC_PML_DEFAULT_MAX_SRC_BYTES ((size_t)16 << 20) /* one src file */
#define PC_PML_MAX_BYTES_LIMIT ((size_t)1 << 30)        /* hard ceiling of max_bytes */
#define PC_PML_MAX_PARAM_LENGTH (1u << 20)              /* largest parameter length, in tokens */

typedef struct pc_pml_options {
    size_t max_bytes;     /* documents longer than this are refused; 0 = default, capped at 1 GiB */
    uint32_t max_depth;   /* deeper element nesting is refused; 0 = default; at most 256 */
    uint32_t max_modules; /* more module elements / references are refused; 0 = default */
    size_t max_src_bytes; /* a src file longer than this is refused; 0 = default */
    /* Folder that `src` paths resolve against. NULL: the schema file's folder
     * for pc_pml_parse_schema_file; for a buffer, `src` is then an error. */
    const char *src_root;
    /* Lenient: escape a raw '<' or '&' that cannot start PML markup (code in
     * text, as in prototype files) and report each change as a warning.
     * Strict (false, the default) refuses such documents. */
    bool lenient;
} pc_pml_options;

typedef enum pc_pml_kind {
    PC_PML_SCHEMA,    /* root of a schema: name */
    PC_PML_MODULE,    /* name, cache, src */
    PC_PML_UNION,     /* scaffold (member name or NULL); children are MODULEs only */
    PC_PML_PARAMETER, /* name, length, scaffold (text or NULL); no children */
    PC_PML_TEXT,      /* text, raw */
    PC_PML_ROLE,      /* role, self_closing; children: text (and in schemas modules, unions, parameters) */
    PC_PML_PROMPT,    /* root of a prompt: name = the schema attribute (NULL when absent) */
    PC_PML_REF,       /* prompt: a module reference; name = element name, attrs = arguments, children = REFs */
} pc_pml_kind;

typedef enum pc_pml_role {
    PC_PML_ROLE_NONE = 0,
    PC_PML_ROLE_SYSTEM,
    PC_PML_ROLE_USER,
    PC_PML_ROLE_ASSISTANT,
} pc_pml_role;

typedef struct pc_pml_attr {
    const char *name;  /* NUL-terminated UTF-8 */
    const char *value; /* after XML attribute-value normalization (tabs, newlines -> spaces) */
} pc_pml_attr;

typedef struct pc_pml_node pc_pml_node;
struct pc_pml_node {
    pc_pml_kind kind;
    uint32_t line, col;   /* of the '<' of the start tag; of the first character of a TEXT */
    const pc_pml_node *parent;
    const pc_pml_node *const *children; /* n_children pointers, document order */
    size_t n_children;
    const pc_pml_attr *attrs; /* every attribute as written, document order */
    size_t n_attrs;

    const char *name; /* SCHEMA, MODULE, PARAMETER: the name attribute; REF: element name;
                         ROLE: "system" / "user" / "assistant"; PROMPT: schema attribute or NULL */

    /* TEXT. `raw` is the character data between two pieces of markup (entities
     * and CDATA decoded, line ends normalized to \n); `text` is `raw` compacted
     * by the prototype's rule. Pieces are split at every element and comment,
     * role tags included. The prototype replaced role tags by template strings
     * *before* parsing, so it compacted only at module/union/parameter
     * boundaries; a layout that wants its exact tokens concatenates `raw` with
     * the role markers and compacts that. Schemas keep whitespace-only pieces
     * (text " ", as the prototype did), except inside unions; prompts drop them.
     * A module's src file becomes its first TEXT child, with from_src set. */
    const char *text, *raw;
    size_t text_len, raw_len; /* bytes, excluding the NUL */
    bool from_src;
    const char *src_path;     /* TEXT from src: the resolved absolute path */

    /* MODULE */
    bool cache;          /* false when cache="false" */
    const char *src;     /* the src attribute as written, or NULL */
    /* UNION: member named by scaffold=, or NULL. PARAMETER: scaffold text, or NULL. */
    const char *scaffold;
    /* PARAMETER: reserved positions, 1 .. PC_PML_MAX_PARAM_LENGTH */
    uint32_t length;
    /* ROLE */
    pc_pml_role role;
    bool self_closing; /* written <system/>: the prototype gave it its own marker */
};

typedef struct pc_pml_warning {
    uint32_t line, col;
    const char *msg; /* "name:line:col: ..." */
} pc_pml_warning;

typedef struct pc_pml_doc {
    const pc_pml_node *root; /* SCHEMA or PROMPT */
    const char *name;        /* file or request name used in messages */
    const pc_pml_warning *warnings; /* lenient-mode changes and libxml2 warnings */
    size_t n_warnings;
    uint32_t n_modules;      /* MODULE nodes (schema) or REF nodes (prompt) */
    struct pc_pml_arena *arena; /* owns everything above */
} pc_pml_doc;

/* Parses a schema document held in text[0..len) (UTF-8; need not be NUL
 * terminated). name labels messages ("travel.xml", "request 42"). opt may be
 * NULL (defaults). On success *out is the caller's, freed by pc_pml_doc_free.
 * On failure *out is NULL and err says "name:line:col: what was expected". */
pc_status pc_pml_parse_schema(const char *text, size_t len, const char *name,
                              const pc_pml_options *opt, pc_pml_doc **out, pc_error *err);

/* Reads the file at path (refusing it when over max_bytes) and parses it as
 * a schema; `src` resolves against the file's folder unless opt->src_root. */
pc_status pc_pml_parse_schema_file(const char *path, const pc_pml_options *opt,
                                   pc_pml_doc **out, pc_error *err);

/* Parses a prompt document (root <prompt schema="...">). Same contract. */
pc_status pc_pml_parse_prompt(const char *text, size_t len, const char *name,
                              const pc_pml_options *opt, pc_pml_doc **out, pc_error *err);

void pc_pml_doc_free(pc_pml_doc *doc);

/* Short static names: "schema", "module", ... ; "?" for an unknown kind. */
const char *pc_pml_kind_name(pc_pml_kind k);

/* Value of attribute `name` on n, or NULL. */
const char *pc_pml_attr_get(const pc_pml_node *n, const char *name);

/* The module named `name` in the scope of `scope` (a SCHEMA, MODULE, PROMPT
 * or REF): children and, through unions and role tags, grandchildren, but
 * never inside another module. NULL when there is none. For a PROMPT or REF
 * scope it finds the REF of that name. */
const pc_pml_node *pc_pml_find_module(const pc_pml_node *scope, const char *name);

/* The parameter named `name` in the scope of module `scope` (through role
 * tags, never inside nested modules or unions), or NULL. */
const pc_pml_node *pc_pml_find_parameter(const pc_pml_node *scope, const char *name);

typedef enum pc_pml_walk_action {
    PC_PML_WALK_CONTINUE = 0, /* go on, into this node's children */
    PC_PML_WALK_SKIP,         /* go on, but not into this node's children */
    PC_PML_WALK_STOP,         /* end the walk */
} pc_pml_walk_action;

typedef pc_pml_walk_action (*pc_pml_visit_fn)(const pc_pml_node *n, uint32_t depth, void *user);

/* Visits n and its descendants in document order (pre-order), depth 0 for n.
 * Returns true when the walk ran to the end, false when a visit said STOP.
 * Recursive: a parsed tree is at most max_depth (<= 256) deep. */
bool pc_pml_walk(const pc_pml_node *n, pc_pml_visit_fn fn, void *user);

#endif
