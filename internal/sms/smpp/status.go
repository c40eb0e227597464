package smpp

import (
	"fmt"

	"github.com/linxGnu/gosmpp/data"

	"github.com/otpd/otpd/internal/sms"
)

// commandStatus is what otpd knows of one SMPP command_status.
type commandStatus struct {
	name  string
	desc  string
	class sms.Status
}

// commandStatuses is the one table of SMPP command_status values (SMPP 3.4
// §5.1.3, and the SMPP 5.0 additions SMSCs send to 3.4 clients too), with
// the refusal each is reported as. A status not in it is temporary. A
// refusal of the sender (source address) or of the account's rights is
// NotPermitted: another SMSC may take the same message.
var commandStatuses = map[data.CommandStatusType]commandStatus{
	0x00000001: {"ESME_RINVMSGLEN", "message length is invalid", sms.Permanent},
	0x00000002: {"ESME_RINVCMDLEN", "command length is invalid", sms.Permanent},
	0x00000003: {"ESME_RINVCMDID", "invalid command ID", sms.Permanent},
	0x00000004: {"ESME_RINVBNDSTS", "incorrect bind status for the command", sms.Temporary},
	0x00000005: {"ESME_RALYBND", "already bound", sms.Temporary},
	0x00000006: {"ESME_RINVPRTFLG", "invalid priority flag", sms.Permanent},
	0x00000007: {"ESME_RINVREGDLVFLG", "invalid registered delivery flag", sms.Permanent},
	0x00000008: {"ESME_RSYSERR", "system error", sms.Temporary},
	0x0000000A: {"ESME_RINVSRCADR", "invalid source address", sms.NotPermitted},
	0x0000000B: {"ESME_RINVDSTADR", "invalid destination address", sms.Permanent},
	0x0000000C: {"ESME_RINVMSGID", "invalid message ID", sms.Permanent},
	0x0000000D: {"ESME_RBINDFAIL", "bind failed", sms.Temporary},
	0x0000000E: {"ESME_RINVPASWD", "invalid password", sms.Temporary},
	0x0000000F: {"ESME_RINVSYSID", "invalid system ID", sms.Temporary},
	0x00000011: {"ESME_RCANCELFAIL", "cancel_sm failed", sms.Temporary},
	0x00000013: {"ESME_RREPLACEFAIL", "replace_sm failed", sms.Temporary},
	0x00000014: {"ESME_RMSGQFUL", "message queue full", sms.Throttled},
	0x00000015: {"ESME_RINVSERTYP", "invalid service type", sms.NotPermitted},
	0x00000033: {"ESME_RINVNUMDESTS", "invalid number of destinations", sms.Permanent},
	0x00000034: {"ESME_RINVDLNAME", "invalid distribution list name", sms.Permanent},
	0x00000040: {"ESME_RINVDESTFLAG", "invalid destination flag", sms.Permanent},
	0x00000042: {"ESME_RINVSUBREP", "invalid submit with replace request", sms.Permanent},
	0x00000043: {"ESME_RINVESMCLASS", "invalid esm_class", sms.Permanent},
	0x00000044: {"ESME_RCNTSUBDL", "cannot submit to a distribution list", sms.Permanent},
	0x00000045: {"ESME_RSUBMITFAIL", "submit_sm failed", sms.Temporary},
	0x00000048: {"ESME_RINVSRCTON", "invalid source address TON", sms.NotPermitted},
	0x00000049: {"ESME_RINVSRCNPI", "invalid source address NPI", sms.NotPermitted},
	0x00000050: {"ESME_RINVDSTTON", "invalid destination address TON", sms.Permanent},
	0x00000051: {"ESME_RINVDSTNPI", "invalid destination address NPI", sms.Permanent},
	0x00000053: {"ESME_RINVSYSTYP", "invalid system_type", sms.NotPermitted},
	0x00000054: {"ESME_RINVREPFLAG", "invalid replace_if_present flag", sms.Permanent},
	0x00000055: {"ESME_RINVNUMMSGS", "invalid number of messages", sms.Permanent},
	0x00000058: {"ESME_RTHROTTLED", "throttling error: the message rate allowed is exceeded", sms.Throttled},
	0x00000061: {"ESME_RINVSCHED", "invalid scheduled delivery time", sms.Permanent},
	0x00000062: {"ESME_RINVEXPIRY", "invalid validity period", sms.Permanent},
	0x00000063: {"ESME_RINVDFTMSGID", "predefined message not found", sms.Permanent},
	0x00000064: {"ESME_RX_T_APPN", "temporary application error of the receiver", sms.Temporary},
	0x00000065: {"ESME_RX_P_APPN", "permanent application error of the receiver", sms.Permanent},
	0x00000066: {"ESME_RX_R_APPN", "the receiver rejected the message", sms.Permanent},
	0x00000067: {"ESME_RQUERYFAIL", "query_sm failed", sms.Temporary},
	0x000000C0: {"ESME_RINVOPTPARSTREAM", "error in the optional part of the PDU", sms.Permanent},
	0x000000C1: {"ESME_ROPTPARNOTALLWD", "optional parameter not allowed", sms.Permanent},
	0x000000C2: {"ESME_RINVPARLEN", "invalid parameter length", sms.Permanent},
	0x000000C3: {"ESME_RMISSINGOPTPARAM", "expected optional parameter missing", sms.Permanent},
	0x000000C4: {"ESME_RINVOPTPARAMVAL", "invalid optional parameter value", sms.Permanent},
	0x000000FE: {"ESME_RDELIVERYFAILURE", "delivery failure", sms.Temporary},
	0x000000FF: {"ESME_RUNKNOWNERR", "unknown error", sms.Temporary},
	// SMPP 5.0.
	0x00000100: {"ESME_RSERTYPUNAUTH", "not authorised for this service type", sms.NotPermitted},
	0x00000101: {"ESME_RPROHIBITED", "prohibited from using this operation", sms.NotPermitted},
	0x00000102: {"ESME_RSERTYPUNAVAIL", "service type unavailable", sms.Temporary},
	0x00000103: {"ESME_RSERTYPDENIED", "service type denied", sms.NotPermitted},
	0x00000104: {"ESME_RINVDCS", "invalid data coding scheme", sms.Permanent},
	0x00000105: {"ESME_RINVSRCADDRSUBUNIT", "invalid source address subunit", sms.NotPermitted},
	0x00000106: {"ESME_RINVDSTADDRSUBUNIT", "invalid destination address subunit", sms.Permanent},
}

// statusOf returns what otpd knows of status: a vendor-specific or unknown
// status is temporary.
func statusOf(status data.CommandStatusType) commandStatus {
	if s, ok := commandStatuses[status]; ok {
		return s
	}
	if status >= 0x400 && status <= 0x4FF {
		return commandStatus{"vendor-specific status", "see the SMSC operator's documentation", sms.Temporary}
	}
	return commandStatus{"unknown status", "not defined by SMPP", sms.Temporary}
}

// describeStatus names status for a message, e.g. "ESME_RINVDSTADR
// (0x0000000B, invalid destination address)".
func describeStatus(status data.CommandStatusType) string {
	s := statusOf(status)
	return fmt.Sprintf("%s (0x%08X, %s)", s.name, uint32(status), s.desc)
}

// statusRefusal returns the refusal of part i of n that the SMSC answered
// with status. If another part reached the SMSC (others), the handset may
// show that part, and the code it may carry: the refusal keeps its class
// but may deliver (MayDeliver), so that otpd keeps the code.
func statusRefusal(status data.CommandStatusType, i, n int, others bool) error {
	s := statusOf(status)
	e := &sms.Error{Status: s.class, MayDeliver: others}
	what := "the SMSC refused the message" + ofParts(i, n) + ": " + describeStatus(status)
	switch s.class {
	case sms.Throttled:
		e.Code = 429
		e.Message = what + "; otpd submits faster than the SMSC allows (lower the carrier's rate_per_second or window)"
	case sms.Permanent:
		e.Code = 400
		e.Message = what
	case sms.NotPermitted:
		e.Code = 403
		e.Message = what + "; the SMSC does not allow it for otpd's account (check the sender and the account's rights there); another carrier may take it"
	default:
		e.Code = 503
		e.Message = what + "; it may succeed later or through another carrier"
	}
	if others {
		e.Message += "; the SMSC took another part of the message, so the handset may show a partial message"
	}
	return sms.Refuse(e, fmt.Errorf("submit_sm answered with command_status 0x%08X", uint32(status)))
}
