package smpp

import (
	"errors"
	"fmt"

	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"

	"github.com/otpd/otpd/internal/gsm7"
	"github.com/otpd/otpd/internal/sms"
)

// submitSM returns a submit_sm of payload, encoded as enc, from src to dst.
func submitSM(src, dst pdu.Address, enc data.Encoding, payload []byte, registered bool) *pdu.SubmitSM {
	sm := pdu.NewSubmitSM().(*pdu.SubmitSM)
	sm.SourceAddr = src
	sm.DestAddr = dst
	if registered {
		sm.RegisteredDelivery = 1 // SMSC delivery receipt on success or failure
	}
	// At most 160 octets (gsm7.Split's limits): within the 254 allowed.
	_ = sm.Message.SetMessageDataWithEncoding(payload, enc)
	return sm
}

// encodeText returns the encoding of text (data_coding 0 or 8) and its
// parts, encoded, as gsm7.Split splits it.
func encodeText(text string) (data.Encoding, [][]byte, error) {
	enc := gsm7.EncodingOf(text)
	split := gsm7.Split(text, enc)
	if len(split) > maxParts {
		return nil, nil, sms.Refuse(&sms.Error{Status: sms.Permanent, Code: 400,
			Message: fmt.Sprintf("the text needs %d SMS parts; a concatenated message holds at most %d", len(split), maxParts)},
			errors.New("text too long"))
	}
	parts := make([][]byte, len(split))
	if enc == gsm7.UCS2 {
		for i, s := range split {
			parts[i] = gsm7.EncodeUCS2(s)
		}
		return data.UCS2, parts, nil
	}
	for i, s := range split {
		b, err := gsm7.Encode(s)
		if err != nil { // EncodingOf said GSM-7: never. The error names a character: not shown.
			return nil, nil, sms.Refuse(&sms.Error{Status: sms.Permanent, Code: 400,
				Message: "the text could not be encoded in GSM 03.38"}, errors.New("gsm7: encoding failed"))
		}
		parts[i] = b
	}
	return data.GSM7BIT, parts, nil
}

// sourceAddress returns the source address of origination identity from:
// an E.164 number (TON 1, NPI 1), a short code (TON 2, NPI 1) or an
// alphanumeric sender ID (TON 5, NPI 0).
func sourceAddress(from string) (pdu.Address, error) {
	invalid := func(why string) (pdu.Address, error) {
		return pdu.Address{}, sms.Refuse(&sms.Error{Status: sms.Permanent, Code: 400,
			Message: "the origination identity cannot be sent over SMPP: " + why},
			errors.New("invalid source address"))
	}
	switch {
	case from == "":
		return invalid("it is empty")
	case from[0] == '+':
		if !digits(from[1:], 1, maxAddrDigits) {
			return invalid(fmt.Sprintf("%q is not an E.164 number ('+' and 1 to %d digits)", from, maxAddrDigits))
		}
		a, _ := pdu.NewAddressWithTonNpiAddr(data.GSM_TON_INTERNATIONAL, data.GSM_NPI_ISDN, from[1:])
		return a, nil
	case digits(from, 1, data.SM_ADDR_LEN-1):
		a, _ := pdu.NewAddressWithTonNpiAddr(data.GSM_TON_NATIONAL, data.GSM_NPI_ISDN, from)
		return a, nil
	case len(from) > maxSenderID:
		return invalid(fmt.Sprintf("the alphanumeric sender ID %q has %d characters, more than %d", from, len(from), maxSenderID))
	case !printableASCII(from):
		return invalid(fmt.Sprintf("the alphanumeric sender ID %q must be printable ASCII", from))
	}
	a, _ := pdu.NewAddressWithTonNpiAddr(data.GSM_TON_ALPHANUMERIC, data.GSM_NPI_UNKNOWN, from)
	return a, nil
}

// destinationAddress returns the destination address of the E.164 number
// to: TON 1, NPI 1, without the '+'.
func destinationAddress(to string) (pdu.Address, error) {
	if len(to) < 2 || to[0] != '+' || !digits(to[1:], 1, maxAddrDigits) {
		return pdu.Address{}, sms.Refuse(&sms.Error{Status: sms.Permanent, Code: 400,
			Message: fmt.Sprintf("the destination %q is not an E.164 number ('+' and 1 to %d digits)", to, maxAddrDigits)},
			errors.New("invalid destination address"))
	}
	a, _ := pdu.NewAddressWithTonNpiAddr(data.GSM_TON_INTERNATIONAL, data.GSM_NPI_ISDN, to[1:])
	return a, nil
}

// digits reports whether s is min to max ASCII digits.
func digits(s string, min, max int) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// printableASCII reports whether s holds only printable ASCII characters.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7E {
			return false
		}
	}
	return true
}
