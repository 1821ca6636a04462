// Preloaded with `node -r tests/js/fake_now.js ...`: "now" is FAKE_NOW (an ISO time with an
// offset) for everything that asks -- new Date(), Date.now(), moment() -- so oref0's bin/*.js
// run as if the clock said FAKE_NOW; the host zone comes from TZ as usual.  Dates built from a
// value are untouched.
'use strict';
var fake = Date.parse(process.env.FAKE_NOW || '');
if (isNaN(fake)) {
    throw new Error('fake_now.js: FAKE_NOW must be an ISO time, got ' + process.env.FAKE_NOW);
}
var RealDate = Date;
function FakeDate() {
    var args = Array.prototype.slice.call(arguments);
    if (!(this instanceof FakeDate)) {
        return new RealDate(fake).toString();
    }
    if (args.length === 0) {
        return new RealDate(fake);
    }
    return new (Function.prototype.bind.apply(RealDate, [null].concat(args)))();
}
FakeDate.prototype = RealDate.prototype;
FakeDate.now = function () { return fake; };
FakeDate.parse = RealDate.parse;
FakeDate.UTC = RealDate.UTC;
global.Date = FakeDate;
