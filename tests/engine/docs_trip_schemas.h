/* docs_trip_schemas.h - two small schemas that tests of Prompt Cache on the
 * default model share: "docs" (two plain modules and a system message) and
 * "trip" (a module with parameters, a union with a scaffold member, a
 * cache="false" module). One copy, so that a test of the store and a test of
 * the engine exercise the same layout. Each test picks its own prompts. */
#ifndef PC_TEST_DOCS_TRIP_SCHEMAS_H
#define PC_TEST_DOCS_TRIP_SCHEMAS_H

static const char *DOCS =
    "<schema name=\"docs\"><system>You answer questions about the documents.</system><user>"
    "<module name=\"rhine\">The Rhine rises in the Swiss Alps and flows north through Germany and the "
    "Netherlands into the North Sea.</module>"
    "<module name=\"etna\">Mount Etna, on the east coast of Sicily, is one of the most active volcanoes in the "
    "world.</module></user></schema>";
static const char *DOCS_P = "<prompt schema=\"docs\"><rhine/><etna/><user>Where does the Rhine rise?</user></prompt>";

static const char *TRIP =
    "<schema name=\"trip\"><user><module name=\"plan\">I travel for <parameter name=\"days\" length=\"4\" "
    "scaffold=\"three days\"/>.<union scaffold=\"home\"><module name=\"home\">I stay home in <parameter "
    "name=\"city\" length=\"6\"/>.</module><module name=\"abroad\">I go abroad to see the world.</module></union>"
    " Then I rest.</module><module name=\"clock\" cache=\"false\">The time now is noon.</module>"
    "<module name=\"after\">Pack light and bring a good book.</module></user></schema>";

#endif
