// Feed decoded pump history to oref0's own IOB history code (lib/iob/history.js) and print, per
// page, the insulin of the boluses oref0 keeps.  stdin: [{id, records}], argv[2]: oref0 folder.
'use strict';
var find_insulin = require(require('path').join(process.argv[2], 'lib/iob/history'));
var input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
var out = {};
input.forEach(function (page) {
  var treatments = find_insulin({history: page.records, profile: {}, clock: '2035-01-01T00:00:00Z'});
  var kept = treatments.filter(function (t) { return typeof t.insulin === 'number'; });
  out[page.id] = {count: kept.length,
                  insulin: kept.reduce(function (s, t) { return s + t.insulin; }, 0)};
});
process.stdout.write(JSON.stringify(out));
