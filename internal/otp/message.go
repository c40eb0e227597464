package otp

import (
	"slices"
	"strings"
)

// templates holds the text of the code message in every language Pinpoint
// supports. en-US is Pinpoint's own text, to the letter; Pinpoint never
// published its translations, so the others are otpd's.
var templates = map[string]string{
	"en-US":  "This is your One Time Password: {{otp}} from {{brand}}",
	"en-GB":  "This is your one-time password: {{otp}} from {{brand}}",
	"de-DE":  "Dies ist Ihr Einmalpasswort: {{otp}} von {{brand}}",
	"es-ES":  "Esta es tu contraseña de un solo uso: {{otp}} de {{brand}}",
	"es-419": "Este es tu código de un solo uso: {{otp}} de {{brand}}",
	"fr-FR":  "Voici votre mot de passe à usage unique : {{otp}} de la part de {{brand}}",
	"fr-CA":  "Voici votre code à usage unique : {{otp}} de {{brand}}",
	"it-IT":  "Questa è la tua password monouso: {{otp}} da {{brand}}",
	"pt-BR":  "Esta é a sua senha de uso único: {{otp}} de {{brand}}",
	"ja-JP":  "{{brand}}のワンタイムパスワードは {{otp}} です",
	"ko-KR":  "{{brand}} 일회용 비밀번호는 {{otp}}입니다",
	"zh-CN":  "这是您的{{brand}}一次性密码：{{otp}}",
	"zh-TW":  "這是您的{{brand}}一次性密碼：{{otp}}",
}

// Languages returns the supported language tags, sorted.
func Languages() []string {
	tags := make([]string, 0, len(templates))
	for tag := range templates {
		tags = append(tags, tag)
	}
	slices.Sort(tags)
	return tags
}

// canonicalLanguage returns the supported tag that equals lang ignoring case
// (so "en-us" is "en-US"), and false if there is none.
func canonicalLanguage(lang string) (string, bool) {
	for tag := range templates {
		if strings.EqualFold(tag, lang) {
			return tag, true
		}
	}
	return "", false
}

// messageText composes the text for a code. It fills the template's
// placeholders in one pass over the template, so a brand name that contains
// "{{otp}}" is kept as written. (It runs at every send: a strings.Replacer
// built for each call cost 15 allocations.)
func messageText(lang, code, brand string) string {
	t := templates[lang]
	var b strings.Builder
	b.Grow(len(t) + len(code) + len(brand))
	for {
		i := strings.Index(t, "{{")
		if i < 0 {
			b.WriteString(t)
			return b.String()
		}
		b.WriteString(t[:i])
		t = t[i:]
		switch {
		case strings.HasPrefix(t, "{{otp}}"):
			b.WriteString(code)
			t = t[len("{{otp}}"):]
		case strings.HasPrefix(t, "{{brand}}"):
			b.WriteString(brand)
			t = t[len("{{brand}}"):]
		default:
			b.WriteString("{{")
			t = t[len("{{"):]
		}
	}
}
