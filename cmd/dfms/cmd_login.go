package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/dfms/dfms/server/api/client"
)

func newLoginCmd() *cobra.Command {
	var o clientOptions
	var email string
	var pwStdin bool
	cmd := o.command(&cobra.Command{
		Use:   "login [--email EMAIL] [--password-stdin]",
		Short: "Log in to a server and store the tokens in $XDG_CONFIG_HOME/dfms/credentials.json",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runLogin(cmd.Context(), o, email, pwStdin, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	})
	cmd.Flags().StringVar(&email, "email", "", "account email (default $DFMS_EMAIL; prompted for on a terminal)")
	cmd.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the password from the first line of standard input (default: $DFMS_PASSWORD if set, else a prompt on a terminal)")
	return cmd
}

func runLogin(ctx context.Context, o clientOptions, email string, pwStdin bool, stdin io.Reader, stdout, stderr io.Writer) error {
	stored, ok, err := loadCredentials()
	if err != nil && o.server == "" && os.Getenv("DFMS_SERVER") == "" {
		return err // a broken file only matters if it names the server
	}
	c, err := o.client(stored, ok, client.WithUserAgent("dfms-cli"))
	if err != nil {
		return err
	}
	tty := isTerminal(stdin)
	in := bufio.NewReader(stdin)
	if email == "" {
		email = os.Getenv("DFMS_EMAIL")
	}
	envPassword := os.Getenv("DFMS_PASSWORD")
	if email == "" {
		if !tty {
			return usageError{errors.New("--email is required when standard input is not a terminal")}
		}
		fmt.Fprint(stderr, "Email: ")
		line, err := in.ReadString('\n')
		if err != nil && line == "" {
			return usageError{errors.New("no email given")}
		}
		email = strings.TrimSpace(line)
	}
	var password string
	if envPassword != "" && !pwStdin {
		password = envPassword
	} else if pwStdin || !tty {
		line, err := in.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		password = strings.TrimRight(line, "\r\n")
	} else {
		fmt.Fprint(stderr, "Password: ")
		b, err := term.ReadPassword(int(stdin.(*os.File).Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return err
		}
		password = string(b)
	}
	if email == "" || password == "" {
		return usageError{errors.New("an email and a password are required")}
	}
	c2, _ := client.New(c.BaseURL(), client.WithUserAgent("dfms-cli"), saveTokens(credentials{Server: c.BaseURL(), Email: email}))
	u, err := c2.Login(ctx, email, password)
	if err != nil {
		return &cliError{msg: "login to " + c.BaseURL() + ": " + describe(err), err: err}
	}
	p, _ := credentialsPath()
	fmt.Fprintf(stdout, "logged in to %s as %s (credentials in %s)\n", c.BaseURL(), u.Email, p)
	return nil
}
